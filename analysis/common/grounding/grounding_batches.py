"""What ``eval-grounding --batch-size B`` (this project's addition) reports: the prompts of several images are
scored B per ``GroundingPipeline.ground_many`` call
(:func:`analysis.common.grounding.grounding_scoring.evaluate_images`, the same call at every B; a run that
cannot share a forward, :func:`~litelvlm.lvlm.batched.batch_error`, is run prompt by prompt by
``ground_many`` itself, and named once on screen and in the summary). :class:`BatchCheck` counts, on each
shared run's first batch, the mask pixels that differ from batch 1 (zero in float32; rounding only in
bfloat16)."""

from __future__ import annotations

from dataclasses import dataclass, field

import pandas as pd
import torch

from analysis.common.grounding.grounding_runs import Run, method_options
from analysis.common.grounding.grounding_scoring import ScoringArgs
from litelvlm.lvlm.batched import batch_error
from litelvlm.runs.io import write_csv
from litelvlm.runs.staging import current

#: the columns of ``OUT/batch_check.csv``
CHECK_COLUMNS = ["method", "budget", "batch_size", "prompts", "pixels", "differing", "max_logit_difference"]


@dataclass
class BatchCheck:
    """Per run (method, budget column): the first batch's prompts, mask pixels, pixels that differ from batch
    1 and the largest mask-logit difference."""

    batch_size: int
    runs: dict = field(default_factory=dict)

    def compare(self, pipe, args: ScoringArgs, run: Run, preps: list, outs: list) -> None:
        """Ground ``preps`` one by one for ``run`` (once per run) and count the pixels differing from
        ``outs``."""
        method, budget = run
        if (method, budget.column) in self.runs:
            return
        opts = method_options(args, method, pipe)
        with torch.no_grad():
            ones = [pipe.ground(prep, method, budget, positions=args.positions, **opts) for prep in preps]
        self.count(method, budget, list(zip(ones, outs, strict=True)))

    def count(self, method: str, budget, pairs: list) -> None:
        """Record the run's (prompts, mask pixels, pixels differing, largest mask-logit difference) over
        ``pairs`` of (batch 1's output, the batch's output)."""
        pixels = differing = 0
        worst = 0.0
        for one, out in pairs:
            pixels += one.masks.numel()
            differing += int((one.masks != out.masks).sum())
            worst = max(worst, float((one.mask_logits - out.mask_logits).abs().max()))
        self.runs[(method, budget.column)] = (len(pairs), pixels, differing, worst)

    def frame(self) -> pd.DataFrame:
        """The check as ``batch_check.csv``'s rows."""
        return pd.DataFrame([[m, b, self.batch_size, *v] for (m, b), v in sorted(self.runs.items())],
                            columns=CHECK_COLUMNS)


def batch_notes(pipe, args, methods: list[str], say: bool = True) -> dict[str, str]:
    """{method: why it runs at batch 1} under ``--batch-size`` B > 1 ({} at 1), said once on screen when
    ``say``."""
    if args.batch_size == 1:
        return {}
    notes = {m: why for m in methods if (why := batch_error(pipe, m, args.answer))}
    if say and notes:
        print(unbatched_line(args.batch_size, notes), end="")
    return notes


def unbatched_line(batch_size: int, notes: dict[str, str]) -> str:
    """One line naming the methods that run at batch 1 under ``--batch-size`` and why."""
    return (f"--batch-size {batch_size}: run at batch 1: "
            + "; ".join(f"{m} ({why})" for m, why in notes.items()) + "\n")


def batch_summary(out, args, notes: dict[str, str], check: BatchCheck | None) -> tuple[str, str]:
    """(the lines ``summary.txt`` adds under ``--batch-size`` B > 1, the screen's) ("" at 1): the methods run
    at batch 1 (said on screen at the start already) and the batch check, whose rows (this run's merged over
    the folder's earlier ones) go to ``OUT/batch_check.csv``."""
    if args.batch_size == 1:
        return "", ""
    path = out / "batch_check.csv"
    table = pd.read_csv(current(path)) if current(path).exists() else pd.DataFrame(columns=CHECK_COLUMNS)
    if check is not None and check.runs:
        table = pd.concat([table, check.frame()]) if not table.empty else check.frame()
        table = table.drop_duplicates(["method", "budget"], keep="last").sort_values(["method", "budget"])
        write_csv(path, table)
    return (unbatched_line(args.batch_size, notes) if notes else "") + check_line(table), check_line(table)


def check_line(check: pd.DataFrame) -> str:
    """One summary line: the pixels of the checked batches that differ from batch 1."""
    if check.empty:
        return ""
    return (f"batch check (--batch-size {int(check['batch_size'].iloc[0])} against 1, each run's first "
            f"batch): {int(check['differing'].sum())} of {int(check['pixels'].sum())} mask pixels differ, "
            f"largest mask-logit difference {float(check['max_logit_difference'].max()):.3g}\n")


__all__ = ["CHECK_COLUMNS", "BatchCheck", "batch_notes", "batch_summary", "check_line"]
