"""(being written: issue 15)"""

import typer


def register(app: typer.Typer) -> None:
    """Add this module's commands to the chipforge app."""
