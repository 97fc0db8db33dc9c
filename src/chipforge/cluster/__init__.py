"""Scale-out: systems and collectives, LLM training plans, recommendation sharding, the
serving simulator and the fleet plan (docs/cluster.md).

Each module keeps its public names in its ``__all__``; this package exports their union.
"""

from chipforge.cluster import _collectives, _fleet, _recsys, _serve, _system, _train
from chipforge.cluster._collectives import *  # noqa: F403
from chipforge.cluster._fleet import *  # noqa: F403
from chipforge.cluster._recsys import *  # noqa: F403
from chipforge.cluster._runner import read_store, run_tasks  # noqa: F401
from chipforge.cluster._serve import *  # noqa: F403
from chipforge.cluster._system import *  # noqa: F403
from chipforge.cluster._train import *  # noqa: F403

__all__ = sorted({"read_store", "run_tasks", *_system.__all__, *_collectives.__all__,
                  *_train.__all__, *_recsys.__all__, *_serve.__all__, *_fleet.__all__})
