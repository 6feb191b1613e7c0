"""Every study checks a budget's range once per input, from the command line to the selection kernels: the
rule (``litelvlm.budget.in_range``) runs in the planner (``analysis.common.grounding.grounding_runs``:
``plan``, ``check_budgets``, ``image_runs``) and not again in ``ground``, a family's runner or a kernel's
``check_budget``. eval-grounding, retention and positions:
tests/analysis/common/grounding/test_grounding_runs.py."""

from __future__ import annotations

import collections

import pytest

import litelvlm.budget as budget_module
from litelvlm.cli import main

#: (command line, {(K, N): times the rule runs}): each budget once against the input's N (a fixed grid's 576,
#: the study image's N, a frame's 576 patches); what a family derives from a checked budget (VideoGLaMM's
#: LLM-side K of 3328 tokens, UniPixel's K of its merged tokens) is a Count within its N by construction, not
#: checked again
VIDEO = ["eval-video", "--budgets", "196,81", "--synthetic-videos", "1", "--synthetic-frames", "2",
         "--anno-sets", "0", "--n-boot", "10"]
CASES = {
    "efficiency": (["efficiency", "--arch", "tiny", "--flops-only", "--budgets", "64,16", "--methods",
                    "fastv,divprune,prumerge", "--no-figures"], {(64, 576): 1, (16, 576): 1}),
    "efficiency-unipixel":
    (["efficiency", "--arch", "unipixel-tiny", "--flops-only", "--budgets", "64,16", "--methods",
                             "fastv,divprune", "--no-figures"], {(64, 391): 1, (16, 391): 1}),
    "validate": (["validate", "--methods", "divprune,prumerge", "--budgets", "64,16", "--repeats", "1",
                  "--no-figures"],
                 {(64, 576): 1, (16, 576): 1}),
    "eval-video": ([*VIDEO, "--methods", "random,fastv"], {(196, 576): 1, (81, 576): 1}),
    "eval-video-unipixel": ([*VIDEO, "--model", "unipixel-tiny-random:0", "--methods", "random,fastv"],
                            {(196, 576): 1, (81, 576): 1}),
}


# eval-video-unipixel stays default
@pytest.mark.parametrize("study",
                         [pytest.param(s, marks=pytest.mark.slow) if s == "eval-video" else s for s in CASES])
def test_a_studys_budgets_are_range_checked_once(study, monkeypatch, tmp_path, coco128):
    argv, expected = CASES[study]
    checks = []
    rule = budget_module.in_range
    monkeypatch.setattr(budget_module, "in_range", lambda k, n,
                        extra=0: checks.append((k, n)) or rule(k, n, extra))
    refer = ["--refer-dir", str(coco128)] if study == "validate" else []
    assert main([*argv, *refer, "--out", str(tmp_path / "out")]) == 0
    assert dict(collections.Counter(checks)) == expected, checks
