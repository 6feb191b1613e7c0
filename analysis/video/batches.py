"""``eval-video --batch-size B`` (this project's addition): B expressions of one video per LLM forward.

The expressions of a video share its frames; only their text differs. Every run, at every B, goes one way
(:func:`expression_results`): the expressions in chunks of B, each chunk through the runner's ``ground``
(:meth:`~litelvlm.video.runner.VideoRunner.ground`: the prompts right-padded through one masked LLM forward,
each pruned by its own selection, each expression's masks then from SAM 2 as at batch 1; a chunk of one, or a
method that cannot share a forward, the runner grounds one by one itself), each output turned into
:meth:`~litelvlm.video.runner.VideoRunner.expression`'s result (its ``result``). The expressions keep their
order, so the rows are batch 1's. The runner's ``batch_error`` only decides what is reported: the methods
named as running at batch 1 (:func:`batch_notes`) and skipped by :class:`VideoBatchCheck`, which grounds each
other (method, budget)'s first batch once more at batch 1 and counts the mask pixels that differ
(``batch_check.csv``, ``summary.txt``: zero in float32, rounding only in bfloat16), as ``eval-grounding
--batch-size`` does (:mod:`analysis.common.grounding.grounding_batches`).
"""

from __future__ import annotations

import torch

from analysis.common.grounding.grounding_batches import BatchCheck
from analysis.common.grounding.grounding_batches import batch_summary as common_summary
from litelvlm.budget import Budget


class VideoBatchCheck(BatchCheck):
    """Per run (method, budget column): the first batch's expressions, mask pixels, pixels that differ from
    batch 1 and the largest mask-logit difference."""

    def compare_video(self, run, recs: list, method: str, budget: Budget, got: list) -> None:
        """Ground ``recs`` one by one (once per run) and count the pixels differing from ``got``'s outputs; a
        method that runs at batch 1 (``run.batch_error``) is not checked (its batches are batch 1)."""
        if (method, budget.column) in self.runs or run.batch_error(method):
            return
        ones = run.ground(recs, method, budget, batched=False)
        self.count(method, budget, [(one, out) for (_, _, one), (_, _, out) in zip(ones, got, strict=True)])


def batch_notes(run, methods: list[str], batch_size: int, say: bool = True) -> dict[str, str]:
    """{method: why it runs at batch 1} under ``--batch-size`` B > 1 ({} at 1), said once on screen when
    ``say`` (the methods sharing a reason named together)."""
    if batch_size == 1:
        return {}
    notes = {m: why for m in methods if (why := run.batch_error(m))}
    if say and notes:
        print(unbatched_line(batch_size, notes), end="")
    return notes


def unbatched_line(batch_size: int, notes: dict[str, str]) -> str:
    """One line naming the methods that run at batch 1 under ``--batch-size`` and why (one reason, its
    methods)."""
    by_reason: dict[str, list[str]] = {}
    for method, why in notes.items():
        by_reason.setdefault(why, []).append(method)
    return (f"--batch-size {batch_size}: run at batch 1: "
            + "; ".join(f"{', '.join(ms)} ({why})" for why, ms in by_reason.items()) + "\n")


def batch_record(batch_size: int, notes: dict[str, str]) -> dict:
    """What ``config.json`` records of ``--batch-size`` B: nothing at 1 (folders written before it resume as
    they were), else B and the methods run at batch 1 (``unbatched``, where any)."""
    if batch_size == 1:
        return {}
    return {"batch_size": batch_size, **({"unbatched": notes} if notes else {})}


def batch_summary(out, a, notes: dict[str, str], check: VideoBatchCheck | None) -> tuple[str, str]:
    """(the lines ``summary.txt`` adds under ``--batch-size`` B > 1, the screen's) ("" at 1): the methods run
    at batch 1 and the batch check, whose rows (this run's merged over the folder's earlier ones) go to
    ``OUT/batch_check.csv`` (:func:`analysis.common.grounding.grounding_batches.batch_summary`)."""
    text, shown = common_summary(out, a, {}, check)
    return (unbatched_line(a.batch_size, notes) if notes else "") + text, shown


@torch.no_grad()
def expression_results(run, recs: list, method: str, budget: Budget, batch_size: int = 1,
                       check: VideoBatchCheck | None = None) -> list[tuple]:
    """``run.expression(rec, method, budget)``'s result for every ``rec`` of one video, in order: chunks of
    ``batch_size`` through ``run.ground`` (which runs one expression, or a method that cannot share a forward,
    one by one itself); ``check`` (where given) compares the first chunk with batch 1."""
    results = []
    for start in range(0, len(recs), batch_size):
        part = recs[start:start + batch_size]
        got = run.ground(part, method, budget)
        if check is not None:
            check.compare_video(run, part, method, budget, got)
        results += [run.result(rec, prep, k, out) for rec, (prep, k, out) in zip(part, got, strict=True)]
    return results


__all__ = ["VideoBatchCheck", "batch_notes", "batch_record", "batch_summary", "expression_results",
           "unbatched_line"]
