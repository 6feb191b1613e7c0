"""The provenance record every study's ``config.json`` keeps under ``run`` (:func:`run_record`) and the torch
thread count beside it: the heavy half of :mod:`analysis.common.runs.study` (it imports torch; the light half
is read by every study's ``options``)."""

from __future__ import annotations

import datetime
import shlex
from collections.abc import Sequence

import torch

from analysis.common.runs.study import git_commit
from litelvlm import __version__
from litelvlm.machine import allocator
from litelvlm.machine.versions import run_versions


def run_record(argv: Sequence[str] | None) -> dict:
    """The provenance record every study's config.json keeps under ``run`` (never compared on resume: it
    describes the latest run): the command line ``litelvlm ARGV`` (``argv``: the run's
    :attr:`Screen.argv <analysis.common.runs.command.Screen.argv>`; None for a study run from Python), the
    library versions, the project's version and git commit, the torch thread count, what glibc's allocator was
    told (``malloc``: :mod:`litelvlm.machine.allocator`), and when the record was written (UTC)."""
    return {"command": None if argv is None else "litelvlm " + shlex.join(argv),
            "written_utc": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
            "litelvlm": __version__, "git_commit": git_commit(), "versions": run_versions(),
            "torch_threads": torch_thread_count(), "malloc": allocator.in_force()}


def torch_thread_count() -> int:
    """The torch intra-op thread count of this run (``litelvlm.threads`` decides it), for
    config.json."""
    return torch.get_num_threads()


__all__ = ["run_record", "torch_thread_count"]
