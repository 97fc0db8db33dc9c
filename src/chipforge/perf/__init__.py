"""The performance engine: mapping search, timing and energy per op and per graph."""

from chipforge.machine import DEFAULT, Efficiency
from chipforge.perf._calibrate import (
    CORE_FIELDS,
    HARNESS_PREFIX,
    LINK_FIELDS,
    CalibrationResult,
    calibrate,
    fit_groups,
)
from chipforge.perf._calibration_profile import (
    CalibrationError,
    CalibrationProfile,
    load_calibration,
    read_profile,
    write_profile,
)
from chipforge.perf._engine import estimate
from chipforge.perf._estimate import BOUNDS, Energy, Estimate
from chipforge.perf._harness import HARNESSES, Harness, harness
from chipforge.perf._kernel_model import (
    KernelTime,
    compiled_kernel_time,
    conv_kernel_time,
    copy_kernel_time,
    gather_kernel_time,
    matmul_kernel_time,
    pool_kernel_time,
    row_kernel_time,
)
from chipforge.perf._matmul import MatmulCost, search_matmul, shared_buffer_read_bytes_per_s
from chipforge.perf.systolic import systolic_compute_cycles

__all__ = [
    "BOUNDS", "CORE_FIELDS", "CalibrationError", "CalibrationProfile", "CalibrationResult",
    "DEFAULT", "Efficiency", "Energy", "Estimate", "HARNESSES", "HARNESS_PREFIX", "Harness",
    "KernelTime", "LINK_FIELDS", "MatmulCost", "calibrate", "compiled_kernel_time",
    "conv_kernel_time", "copy_kernel_time", "estimate", "fit_groups", "gather_kernel_time",
    "harness", "load_calibration", "matmul_kernel_time", "pool_kernel_time", "read_profile",
    "row_kernel_time", "search_matmul", "shared_buffer_read_bytes_per_s",
    "systolic_compute_cycles", "write_profile"
]
