"""(being written: issue 15)"""

__all__: list[str] = []
