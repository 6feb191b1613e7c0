"""The suite's package: two settings of its processes, made here, the first module of the suite pytest imports
(before ``tests/conftest.py`` imports torch).

- Python's cycle collector is off until collection ends (``pytest_collection`` in the conftest): its passes
  over a heap that only grows cost a process about 1 of its 11 CPU-s of startup.
- An xdist worker ends without the interpreter's teardown: its results are sent and every other exit
  handler has run (this one, registered first, runs last); freeing a worker's modules and objects one by one
  took about 3 s at the end of each run, while the controller waited.
"""

import atexit
import gc
import logging
import os
import sys

gc.disable()


def _end_without_teardown() -> None:
    """Flush what the process has buffered and end it, skipping the interpreter's teardown."""
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)


if os.environ.get("PYTEST_XDIST_WORKER"):
    atexit.register(_end_without_teardown)
