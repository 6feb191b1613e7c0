"""``validate``'s checks of every run, and the tolerance of the one that compares logits.

On the eager path (eager attention, the eager prefill, nothing compiled) a run keeping every visual token in
order does the unpruned model's arithmetic, so its logits equal ``none``'s exactly. Under SDPA, flash, a
captured or a compiled prefill the kernels may order their sums by the sequence's shape, so the same run may
differ from ``none`` by rounding: the check then allows :data:`ROUNDING` of the model dtype (its masks must
still be equal) and its name says so (docs/validate.md).
"""

from __future__ import annotations

import pandas as pd

from litelvlm.methods import is_baseline

#: the largest |logit difference| from ``none`` a run keeping every token in order may show off the eager
#: path, by model dtype: a few hundred units in the last place of logits of order 10 (float32: 3.5e-11 seen
#: under SDPA on a CPU)
ROUNDING = {"float32": 1e-4, "float16": 1e-2, "bfloat16": 1e-1}


def logit_tolerance(kernel: str, prefill: str, compiled: bool, dtype: str) -> float:
    """0 on the eager path (``kernel`` the LLM's attention implementation, ``prefill`` the prefill path,
    ``compiled`` a compiled prefill), else :data:`ROUNDING` of ``dtype`` (a name such as ``float32``)."""
    if kernel == "eager" and prefill == "eager" and not compiled:
        return 0.0
    return ROUNDING.get(dtype, ROUNDING["bfloat16"])


def is_baseline_row(rows: pd.DataFrame) -> pd.Series:
    """Whether each row's method is the unpruned baseline (a name no method has is not)."""
    return rows["method"].map(is_baseline).astype(bool)


def checks(rows: pd.DataFrame, n: int, sentences: int, image_size: tuple[int, ...],
           tolerance: float = 0.0) -> dict[str, list[str]]:
    """{check: the (method, budget) pairs that fail it} (an empty list: passed); ``n``: the budget keeping
    everything; ``image_size``: one mask's shape ((H, W), or a video's (T, H, W)); ``tolerance``: the
    |logit difference| allowed a run keeping every token in order (:func:`logit_tolerance`)."""
    def fails(mask) -> list[str]:
        return [f"{m}@{b}" for m, b in zip(rows.loc[mask, "method"], rows.loc[mask, "budget"])]

    shape = "x".join(str(v) for v in (sentences, *image_size))
    in_order = (rows["budget"] == n) & rows["keeps_all_in_order"].astype(bool)
    equal = f"methods keeping all {n} tokens in order equal none" + (
        f" (masks equal, |logit difference| <= {tolerance:g})" if tolerance else "")
    return {
        "none is deterministic (equals the reference run)":
            fails(is_baseline_row(rows) & ~rows["masks_equal_none"].astype(bool)),
        equal: fails(in_order & ~(rows["masks_equal_none"].astype(bool)
                                  & (rows["max_logit_diff_none"] <= tolerance))),
        "no method changes the text tokens": fails(~rows["text_ids_equal"].astype(bool)),
        f"masks are bool {shape}": fails((rows["mask_shape"] != shape) | (rows["mask_dtype"] != "bool")),
        "one [SEG] position per sentence": fails(rows["seg_positions"].str.split().str.len() != sentences),
    }


def failed_text(result: dict[str, list[str]]) -> str:
    """The failed checks, each with its failing runs, for the screen ("" when every check passed)."""
    return "; ".join(f"{k} (failing: {' '.join(v)})" for k, v in result.items() if v)
