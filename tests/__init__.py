"""The suite's package. Python's cycle collector is off from here (the first module of the suite pytest
imports, before ``tests/conftest.py`` imports torch) until collection ends (``pytest_collection`` in the
conftest): its passes over a heap that only grows cost a process about 1 of its 11 CPU-s of startup."""

import gc

gc.disable()
