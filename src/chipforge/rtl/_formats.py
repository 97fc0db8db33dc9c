"""Operand formats of the RTL matrix unit and the widths they imply.

int8 products are summed in two's complement, exactly (the column sum never overflows its
width, the accumulator add wraps to int32). Float formats are summed *exactly* in a
Kulisch fixed-point register wide enough for every product of the format and R of them,
then rounded once to fp32: the numerics of :func:`chipforge.numerics.matmul_acc`.
"""

from __future__ import annotations

from dataclasses import dataclass
from math import ceil, log2

from chipforge.errors import ChipforgeError
from chipforge.numerics import FORMATS as NUMBER_FORMATS


class RtlError(ChipforgeError):
    """A bad RTL parameter (array size, dtype, SRAM depth) or a failed tool run."""


@dataclass(frozen=True)
class MxFormat:
    """An operand format: ``int8`` or a sign / exponent / mantissa float."""

    name: str
    bits: int
    exp_bits: int = 0  # 0 for int8
    man_bits: int = 0
    bias: int = 0
    has_inf: bool = True  # e4m3fn has none: S.1111.111 is its only NaN

    @property
    def is_float(self) -> bool:
        return self.exp_bits > 0

    @property
    def precision(self) -> int:
        """Significand bits with the implicit one."""
        return self.man_bits + 1

    @property
    def max_exp_field(self) -> int:
        """The largest exponent field of a finite value."""
        top = (1 << self.exp_bits) - 1
        return top - 1 if self.has_inf else top  # e4m3fn: E=1111 holds normals up to 448

    @property
    def product_shift(self) -> int:
        """Largest left shift of a significand product into the fixed-point sum."""
        return 2 * (self.max_exp_field - 1)

    @property
    def lsb_exp(self) -> int:
        """Exponent of the fixed-point sum's LSB: the smallest subnormal squared."""
        return 2 * (1 - self.bias - self.man_bits)

    def sum_width(self, rows: int) -> int:
        """Signed width of a column sum of ``rows`` products, never overflowing."""
        grow = ceil(log2(rows)) if rows > 1 else 0
        if not self.is_float:
            return 2 * self.bits + grow  # |a*b| <= 2**14 fits 16 signed bits
        return 2 * self.precision + self.product_shift + grow + 1


def _float_format(name: str) -> MxFormat:
    f = NUMBER_FORMATS[name]  # the bit layout the numerics define, not a second copy
    return MxFormat(name, f.bits, f.exponent_bits, f.mantissa_bits, f.bias, f.has_inf)


FORMATS: dict[str, MxFormat] = {"int8": MxFormat("int8", 8)} | {
    name: _float_format(name) for name in ("bf16", "fp8_e4m3", "fp8_e5m2")}
DTYPES = tuple(FORMATS)

MAX_DIM = 256


def fmt_of(dtype: str) -> MxFormat:
    """The format named ``dtype`` or an :class:`RtlError` naming the supported ones."""
    try:
        return FORMATS[dtype]
    except KeyError:
        raise RtlError(f"unsupported RTL dtype {dtype!r}; expected one of "
                       f"{', '.join(DTYPES)}") from None


def check_dims(rows: int, cols: int) -> None:
    """Arrays from 2 x 2 to 256 x 256 (the controller needs R + C >= 4, see docs/rtl.md)."""
    for name, value in (("rows", rows), ("cols", cols)):
        if not isinstance(value, int) or not 2 <= value <= MAX_DIM:
            raise RtlError(f"--{name} must be an integer in 2..{MAX_DIM}, got {value!r}")


def banks_for(n: int) -> int:
    """Power-of-two bank count >= n: any n consecutive words fall in distinct banks."""
    return 1 << max(0, ceil(log2(n)))
