"""glibc's allocator set to keep freed memory for the next tensor (this project's own speed setting; it
changes no number a run computes).

By default glibc serves every block above a threshold (128 KiB, growing with use to at most 32 MiB) with a
fresh ``mmap`` and unmaps it when it is freed, and hands its heap's free top back to the kernel above 128 KiB.
A CPU forward makes and frees blocks of megabytes per op (a tiny GLaMM's attention scores are 8.6 MB each), so
each op faulted its pages in anew: on a 2-core AVX2 machine a tiny GLaMM call took 2.4x the CPU time it takes
with the blocks kept (28 thousand minor faults a call against none). The ``litelvlm`` command therefore raises
both thresholds (:func:`keep_freed_memory`) unless ``LITELVLM_MALLOC=system``; importing the library changes
nothing. Kept memory stays resident until the process ends or :func:`release_freed_memory` hands it back
(``validate`` does, before each peak-RSS window). Off Linux with glibc every call is a no-op.
"""

from __future__ import annotations

import ctypes
import functools
import os
import platform
import sys

from ..errors import LiteLVLMError

#: the environment variable: ``keep`` (the command's default) or ``system`` (glibc's own behaviour)
ENV = "LITELVLM_MALLOC"
CHOICES = ("keep", "system")
#: blocks up to this size come from the heap (glibc's default: 128 KiB, growing to 32 MiB)
MMAP_THRESHOLD = 256 << 20
#: the heap's free top is handed back only above this (glibc's default: 128 KiB); mallopt's largest value
TRIM_THRESHOLD = 2**31 - 1
PAGE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096
_IN_FORCE = "system"   # what this process was told (for the run record: in_force)
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3   # mallopt's parameter numbers (malloc.h)


@functools.lru_cache(maxsize=1)
def _libc() -> ctypes.CDLL | None:
    if not supported():
        return None
    libc = ctypes.CDLL("libc.so.6")
    libc.mallopt.argtypes, libc.malloc_trim.argtypes = [ctypes.c_int, ctypes.c_int], [ctypes.c_size_t]
    return libc


def supported() -> bool:
    """True on Linux with glibc, the allocator these settings are for."""
    return sys.platform.startswith("linux") and platform.libc_ver()[0] == "glibc"


def keep_freed_memory() -> bool:
    """Raise glibc's mmap and trim thresholds for this process (once is enough); True when they were set."""
    global _IN_FORCE
    libc = _libc()
    if libc is None:
        return False
    kept = bool(libc.mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD)
                and libc.mallopt(_M_TRIM_THRESHOLD, TRIM_THRESHOLD))
    _IN_FORCE = "keep" if kept else _IN_FORCE
    return kept


def release_freed_memory() -> bool:
    """Hand the memory the allocator keeps free back to the kernel (``malloc_trim(0)``); True when some
    was."""
    libc = _libc()
    return bool(libc.malloc_trim(0)) if libc is not None else False


def choice(environ: dict[str, str] | None = None) -> str:
    """``LITELVLM_MALLOC`` (``keep`` when unset), checked: a LiteLVLMError names the variable and the
    choices."""
    value = (os.environ if environ is None else environ).get(ENV, "keep").strip().lower()
    if value not in CHOICES:
        raise LiteLVLMError(f"{ENV}={value!r} is not one of {', '.join(CHOICES)} (keep: glibc keeps freed "
                            "memory for the next tensor, the command's default; system: glibc's own)")
    return value


def apply_choice(environ: dict[str, str] | None = None) -> str:
    """What the ``litelvlm`` command does first: :func:`keep_freed_memory` unless ``LITELVLM_MALLOC=system``.
    Returns the setting in force for the run record: ``keep``, ``system`` or ``unsupported``."""
    global _IN_FORCE
    if choice(environ) != "system" and not keep_freed_memory():
        _IN_FORCE = "unsupported"
    return _IN_FORCE


def in_force() -> str:
    """The setting in force in this process: ``keep`` once :func:`keep_freed_memory` ran, ``unsupported``
    when :func:`apply_choice` could not, else ``system`` (a notebook importing the library)."""
    return _IN_FORCE


def child_tunables() -> str:
    """The same thresholds as a ``GLIBC_TUNABLES`` value, for processes started from this one."""
    return f"glibc.malloc.mmap_threshold={MMAP_THRESHOLD}:glibc.malloc.trim_threshold={TRIM_THRESHOLD}"


__all__ = ["CHOICES", "ENV", "MMAP_THRESHOLD", "PAGE", "TRIM_THRESHOLD", "apply_choice", "child_tunables",
           "choice", "in_force", "keep_freed_memory", "release_freed_memory", "supported"]
