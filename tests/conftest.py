"""Shared test set-up: this folder is on sys.path (pytest's rootdir conftest), so test
modules can import the small helpers that live beside it (``clitools``)."""
