"""glibc's allocator kept from returning freed memory (``litelvlm.machine.allocator``): a freed block serves
the next one without faulting its pages in anew, the ``litelvlm`` command does it unless
``LITELVLM_MALLOC=system``, a bad value is one clear error, and :class:`PeakRSS` hands the kept memory back
before it measures."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import pytest

from analysis.validate.measure import PeakRSS, rss_bytes
from litelvlm import cli
from litelvlm.machine import allocator

pytestmark = pytest.mark.skipif(not allocator.supported(), reason="glibc's allocator only (Linux with "
                                "glibc): elsewhere the setting is a no-op")

# 20 blocks of 32 MiB, each written through and freed: glibc serves blocks this large with a fresh mmap (its
# dynamic threshold stops at 32 MiB) and unmaps them when freed, so each one faults its 8,192 pages in anew.
# Plain ctypes: no torch import in the child.
_FAULTS = textwrap.dedent("""
    import ctypes, json, resource, sys
    from litelvlm.machine import allocator
    kept = allocator.keep_freed_memory() if sys.argv[1] == "keep" else False
    libc = ctypes.CDLL("libc.so.6")
    libc.malloc.restype = ctypes.c_void_p
    libc.free.argtypes = [ctypes.c_void_p]
    n = 32 << 20
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    for _ in range(20):
        p = libc.malloc(n)
        ctypes.memset(p, 1, n)
        libc.free(p)
    print(json.dumps({"kept": kept, "faults": resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before}))
""")


def _faults(mode: str) -> dict:
    env = {k: v for k, v in os.environ.items() if k != "GLIBC_TUNABLES"}   # the suite's own setting left out
    out = subprocess.run([sys.executable, "-c", _FAULTS, mode], capture_output=True, text=True, check=True,
                         env=env)
    return json.loads(out.stdout)


def test_a_freed_block_serves_the_next_without_faulting_its_pages_in_again():
    system, kept = _faults("system"), _faults("keep")
    pages = (32 << 20) // allocator.PAGE
    assert not system["kept"] and kept["kept"]
    assert system["faults"] >= 20 * pages * 0.9        # every block faulted in anew (the setting matters)
    assert kept["faults"] <= 2 * pages                 # the first block only (and its neighbours)


def _run_cli(monkeypatch, value: str | None, capsys) -> tuple[int, list[str], str]:
    calls = []
    monkeypatch.setattr(allocator, "keep_freed_memory", lambda: calls.append("keep") or True)
    if value is None:
        monkeypatch.delenv(allocator.ENV, raising=False)
    else:
        monkeypatch.setenv(allocator.ENV, value)
    code = cli.main(["select", "--list-methods"])
    return code, calls, capsys.readouterr().err


@pytest.mark.parametrize("value, kept", [(None, True), ("keep", True), ("system", False),
                                         (" System ", False)])
def test_the_command_keeps_freed_memory_unless_told_system(monkeypatch, capsys, value, kept):
    code, calls, _ = _run_cli(monkeypatch, value, capsys)
    assert code == 0 and calls == (["keep"] if kept else [])


def test_a_bad_value_is_one_error_naming_the_variable(monkeypatch, capsys):
    code, calls, err = _run_cli(monkeypatch, "fast", capsys)
    assert code == 2 and calls == []
    assert err.count("\n") == 1 and "LITELVLM_MALLOC" in err and "'fast'" in err and "keep, system" in err


def test_the_settings_as_glibc_tunables_for_child_processes():
    env = allocator.child_tunables()
    assert env == (f"glibc.malloc.mmap_threshold={allocator.MMAP_THRESHOLD}:"
                   f"glibc.malloc.trim_threshold={allocator.TRIM_THRESHOLD}")


def test_peak_rss_hands_the_kept_memory_back_before_it_measures():
    import torch

    allocator.keep_freed_memory()
    blocks = [torch.ones(48 << 20, dtype=torch.uint8) for _ in range(3)]   # 144 MiB written
    del blocks                                       # freed, and kept by the allocator: still resident
    kept = rss_bytes()
    with PeakRSS() as rss:
        pass
    assert kept - rss.peak >= 128 << 20              # measured after the kept memory went back


def test_the_setting_in_force_is_what_the_process_was_told():
    assert allocator.keep_freed_memory() and allocator.in_force() == "keep"
    # a process cannot go back: LITELVLM_MALLOC=system after keep still records keep
    assert allocator.apply_choice({allocator.ENV: "system"}) == "keep"
