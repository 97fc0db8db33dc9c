"""The one exception family users see. The CLI prints ``error: <message>`` and exits 2."""


class ChipforgeError(Exception):
    """A user-facing error whose message alone says what is wrong and what was expected."""


class SpecError(ChipforgeError):
    """A chip spec that cannot be read or validated."""


class OpSyntaxError(ChipforgeError):
    """An op string or op arguments that cannot be read."""


class WorkloadError(ChipforgeError):
    """A model config or workload that cannot be built."""


class ClusterError(ChipforgeError):
    """A system, training plan, serving deployment, demand file or fleet that cannot be
    built or does not fit."""
