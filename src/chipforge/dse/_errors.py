"""The DSE's user-facing error (a ChipforgeError: the CLI prints it and exits 2)."""

from chipforge.errors import ChipforgeError


class DseError(ChipforgeError):
    """A bad space, constraint or objective file, or a run that cannot start or resume."""
