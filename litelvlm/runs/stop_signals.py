"""Stop signals as interrupts: a run stopped by ``kill``, ``timeout`` or a job scheduler (SIGTERM) or by a
closed terminal (SIGHUP) rolls back as Ctrl-C (SIGINT) does, and the moves of a commit are never cut in the
middle.

:func:`stops_as_interrupts` makes SIGTERM and SIGHUP raise :class:`Stopped` (a ``KeyboardInterrupt``) in the
main thread while a run is inside it, where their handler is still the default (a program that set its own
keeps it); :func:`held` holds SIGINT, SIGTERM and SIGHUP back while a commit moves files, delivering them when
it ends. SIGKILL and a power loss cannot be caught: the next command on the folder finishes or undoes what
such a run left (:func:`litelvlm.runs.recovery.settle`). This module is this project's own.
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Iterator

#: the signals that stop a run and roll it back
STOPS = (signal.SIGTERM, signal.SIGHUP)


class Stopped(KeyboardInterrupt):
    """A run stopped by SIGTERM or SIGHUP, handled as Ctrl-C is; ``name`` and ``signum`` say which."""

    def __init__(self, signum: int):
        super().__init__(signal.Signals(signum).name)
        self.signum = signum
        self.name = signal.Signals(signum).name


def _raise(signum: int, frame: object) -> None:
    raise Stopped(signum)


def _main_thread() -> bool:
    return threading.current_thread() is threading.main_thread()


@contextlib.contextmanager
def stops_as_interrupts() -> Iterator[None]:
    """Inside: SIGTERM and SIGHUP raise :class:`Stopped` (where their handler is the default and this is the
    main thread); their handlers are restored on the way out."""
    old: dict[int, object] = {}
    if _main_thread():
        for sig in STOPS:
            if signal.getsignal(sig) == signal.SIG_DFL:
                old[sig] = signal.signal(sig, _raise)
    try:
        yield
    finally:
        for sig, handler in old.items():
            signal.signal(sig, handler)


@contextlib.contextmanager
def held() -> Iterator[None]:
    """Inside: SIGINT, SIGTERM and SIGHUP are noted, not acted on, and arrive (to the handlers they had) when
    the block ends, so the block runs whole or not at all (in the main thread; elsewhere a plain block).
    Python runs signal handlers in the main thread whichever thread the system gave the signal to, so the
    handlers, not the thread's signal mask, are what holds them."""
    if not _main_thread():
        yield
        return
    noted: list[int] = []
    old: dict[int, object] = {}
    for sig in (signal.SIGINT, *STOPS):
        handler = signal.getsignal(sig)
        if handler is not None and handler != signal.SIG_IGN:
            old[sig] = signal.signal(sig, lambda signum, frame: noted.append(signum))
    try:
        yield
    finally:
        for sig, handler in old.items():
            signal.signal(sig, handler)
        for sig in dict.fromkeys(noted):
            signal.raise_signal(sig)


__all__ = ["STOPS", "Stopped", "held", "stops_as_interrupts"]
