"""The ``chipforge`` command line."""

from chipforge.cli._app import app, main

__all__ = ["app", "main"]
