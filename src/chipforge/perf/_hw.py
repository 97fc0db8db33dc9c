# temporary: the compiler's moved modules still import these names; removed once rewired
from chipforge.machine import (  # noqa: F401
    ACCUMULATOR_WORDS,
    BARRIER_CYCLES,
)
from chipforge.machine import ROW_CHUNK_ROWS as ROW_CHUNK  # noqa: F401
