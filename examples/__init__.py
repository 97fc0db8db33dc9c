"""The model files the README's examples use (``examples/model.py``)."""
