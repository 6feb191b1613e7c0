"""The families' registry and what it decides from a model string: its family, its one resolution, the
kind of its weights."""
