"""The suite's package: two settings of its processes, made here, the first module of the suite pytest imports
(before ``tests/conftest.py``, and before any test module imports torch).

- Python's cycle collector is off until collection ends (``pytest_collection`` in the conftest): its passes
  over a heap that only grows cost a process about 1 of its 11 CPU-s of startup. Only under pytest: another
  process importing the suite's helpers keeps its collector.
- An xdist worker ends without the interpreter's teardown: its results are sent and every other exit
  handler has run (this one, registered first, runs last); freeing a worker's modules and objects one by one
  took about 3 s at the end of each run, while the controller waited. Only the process the conftest marks
  (:func:`end_as_worker`) does: a process forked from it, or one started with its environment, ends as usual,
  with its own exit status.
"""

import atexit
import gc
import logging
import os
import sys

if "_pytest.config" in sys.modules:   # pytest's own process, collecting
    gc.disable()

#: the process id of the xdist worker this process is (None: not one)
_worker_pid: int | None = None


def end_as_worker() -> None:
    """Mark this process an xdist worker: at exit, after its other exit handlers, it skips the teardown."""
    global _worker_pid
    _worker_pid = os.getpid()


def _end_without_teardown() -> None:
    """In the marked worker: flush what the process has buffered and end it, skipping the teardown."""
    if _worker_pid != os.getpid():   # not a worker, or forked from one
        return
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)


atexit.register(_end_without_teardown)
