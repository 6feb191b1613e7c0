"""Ratios against the unpruned baseline, the FLOPs-ideal limit, and the paper's numbers beside ours."""

from __future__ import annotations

import math

import pandas as pd

from analysis.common.measures.paper_efficiency import PAPER_BY_METHOD, PAPER_SETTINGS, paper_ratio
from analysis.common.presentation.markdown_table import to_markdown
from litelvlm.methods import BASELINE, get_method, method_names

#: Methods whose efficiency numbers the paper gives
#: (:data:`~analysis.common.measures.paper_efficiency.PAPER_BY_METHOD`): the other rows' paper columns stay
#: empty (never one method's ratios beside another method).
PAPER_METHODS = tuple(PAPER_BY_METHOD)


def baseline_rows(methods: pd.Series) -> pd.Series:
    """Whether each row's method is the unpruned baseline (``Method.baseline``; a row label that names no
    method, such as a figure's ``method (arrangement)``, is not)."""
    baselines = {m for m in method_names() if get_method(m).baseline}
    return methods.isin(baselines)


def layer_setting(budget: int, layer: int, visual: int = 576) -> str:
    """A method's (K, R) as run here: prune at layer K down to ``budget`` visual tokens, R = share pruned."""
    return f"K={layer}, R={1 - budget / visual:.1%} (budget-matched: {budget} of {visual} kept)"


def add_ratios(df: pd.DataFrame, group: list[str]) -> pd.DataFrame:
    """Add baseline/row ratios within each ``group`` (e.g. per attention implementation).

    The baseline row is the method whose ``Method.baseline`` is set (``none``). Ratios:
    ``flops_ideal_speedup`` (LLM FLOPs), ``e2e_flops_ideal_speedup``, ``prefill_speedup``, ``cuda_speedup``,
    ``e2e_speedup``, ``e2e_cuda_speedup``, ``act_reduction``, ``e2e_act_reduction``, and how close the
    measured prefill speedup comes to the FLOPs-ideal one (``prefill_frac_of_ideal``).
    """
    pairs = {
        "flops_ideal_speedup": "llm_tflops_measured",
        "e2e_flops_ideal_speedup": "e2e_tflops",
        "prefill_speedup": "prefill_ms",
        "cuda_speedup": "llm_cuda_ms",
        "e2e_speedup": "e2e_ms",
        "e2e_cuda_speedup": "e2e_cuda_ms",
        "act_reduction": "llm_act_mb",
        "e2e_act_reduction": "e2e_act_mb",
        "meta_act_reduction": "llm_act_mb_meta",
        # the paper's definitions (analysis.common.measures.paper_efficiency)
        "paper_flops_speedup": "paper_tflops",
        "paper_act_reduction": "paper_activation_gib",
        # the decoder-layer loop only (analysis.common.measures.layer_timer)
        "paper_def_prefill_speedup": "paper_prefill_ms",
        # this project's reading of the paper's CUDA time
        "cuda_time_reading_speedup": "cuda_time_reading_ms",
    }
    out = []
    for _, g in df.groupby(group, sort=False, dropna=False):
        g = g.copy()
        base = g[baseline_rows(g["method"])]
        for ratio, col in pairs.items():
            if col not in g:
                continue
            b = float(base[col].iloc[0]) if len(base) else math.nan
            g[ratio] = b / g[col]
        if "prefill_speedup" in g:
            g["prefill_frac_of_ideal"] = g["prefill_speedup"] / g["flops_ideal_speedup"]
        if "e2e_speedup" in g:
            g["e2e_frac_of_ideal"] = g["e2e_speedup"] / g["e2e_flops_ideal_speedup"]
        if "selector_ms" in g and len(base):
            # the CLIP text trace of GLaMM's text-guided selectors
            text = g["text_ms"] if "text_ms" in g else 0.0
            g["selector_overhead_pct"] = 100 * (g["selector_ms"] + text) / float(base["prefill_ms"].iloc[0])
        out.append(g)
    return pd.concat(out, ignore_index=True)


def _paper(numbers: dict | None, metric: str, budget: int) -> float:
    return paper_ratio(metric, budget, numbers) if numbers else math.nan


def comparison_table(df: pd.DataFrame, budgets: tuple[int, ...] = (192, 64), method_args=None,
                     visual: int = 576, paper: bool = True) -> pd.DataFrame:
    """One row per (attention, method, budget in ``budgets``): our ratios next to the paper's.

    The paper columns hold the paper's numbers for that row's method (NaN where the paper's number
    is not available, and in every row when ``paper`` is False: rows of another architecture than the
    paper's); a method whose setting the paper states
    (:data:`~analysis.common.measures.paper_efficiency.PAPER_SETTINGS`) states its (K, R) setting of
    ``visual`` tokens as run when ``method_args`` (the run's arguments) are given.
    """
    rows = []
    keep = df[df["budget"].isin(budgets) & ~baseline_rows(df["method"])]
    for _, r in keep.iterrows():
        b = int(r["budget"])
        ours = PAPER_BY_METHOD.get(r["method"]) if paper else None
        row = {"attn": r.get("attn"), "method": r["method"], "budget": b,
               **({"arrangement": r["arrangement"]} if "arrangement" in r else {}),
               "flops_ratio": r.get("flops_ideal_speedup"),
               "paper_def_tflops": r.get("paper_tflops", math.nan),
               "paper_def_flops_ratio": r.get("paper_flops_speedup", math.nan),
               "flops_ratio_paper": _paper(ours, "flops_tb", b),
               "paper_convention_tmacs": r.get("llm_tmacs_paper_convention"),
               "paper_tb": ours["flops_tb"].get(b, math.nan) if ours else math.nan,
               "prefill_speedup": r.get("prefill_speedup", math.nan),
               # the spread of the interleaved repeats: extremes of the per-round paired ratios
               "prefill_speedup_min": r.get("prefill_speedup_min", math.nan),
               "prefill_speedup_max": r.get("prefill_speedup_max", math.nan),
               "prefill_speedup_paper": _paper(ours, "prefill_ms", b),
               "paper_def_prefill_speedup": r.get("paper_def_prefill_speedup", math.nan),
               "paper_def_prefill_speedup_min": r.get("paper_def_prefill_speedup_min", math.nan),
               "paper_def_prefill_speedup_max": r.get("paper_def_prefill_speedup_max", math.nan),
               "prefill_frac_of_ideal": r.get("prefill_frac_of_ideal", math.nan),
               "e2e_speedup": r.get("e2e_speedup", math.nan),
               "e2e_flops_ideal_speedup": r.get("e2e_flops_ideal_speedup", math.nan),
               "cuda_speedup": r.get("e2e_cuda_speedup", math.nan),
               "cuda_time_reading_speedup": r.get("cuda_time_reading_speedup", math.nan),
               "cuda_speedup_paper": _paper(ours, "cuda_ms", b),
               "act_reduction": r.get("act_reduction", r.get("meta_act_reduction", math.nan)),
               "act_reduction_meta": r.get("meta_act_reduction", math.nan),
               "paper_def_activation_gib": r.get("paper_activation_gib", math.nan),
               "paper_def_act_reduction": r.get("paper_act_reduction", math.nan),
               "act_reduction_paper": _paper(ours, "activations_gb", b),
               "selector_overhead_pct": r.get("selector_overhead_pct", math.nan)}
        if method_args is not None:
            stated = PAPER_SETTINGS.get(r["method"], "")
            layer = get_method(r["method"]).options_from(method_args).get("layer") if stated else None
            row["setting"] = layer_setting(b, layer, visual) if layer is not None else ""
            row["setting_paper"] = stated if paper else ""
        rows.append(row)
    return pd.DataFrame(rows)


#: The paper's quantities (columns of ``efficiency.csv``) under the names the terminal gives them, and the
#: key of the paper's own numbers in each method's
#: :data:`~analysis.common.measures.paper_efficiency.PAPER_BY_METHOD`.
PAPER_NAMES = {"paper_tflops": ("TFLOPs (paper's definition)", "flops_tb"),
               "paper_activation_gib": ("storing activation GiB (paper's definition)", "activations_gb"),
               "paper_prefill_ms": ("prefill ms (paper's definition: decoder-layer loop)", "prefill_ms"),
               "cuda_time_reading_ms": ("CUDA time ms (this project's reading: whole pipeline)", "cuda_ms")}


def on_cuda(df: pd.DataFrame) -> bool:
    """Whether ``df``'s rows were timed on a CUDA device (CUDA-only quantities are shown only then)."""
    if "device" not in df or not len(df):
        return False
    device = df["device"].astype(str)
    return not (device.str.startswith(("CPU", "cpu", "meta"))).any()


def paper_summary(df: pd.DataFrame, paper: bool = False) -> str:
    """The rows' quantities on the paper's definitions (``analysis.common.measures.paper_efficiency``),
    named as such, for the terminal: one methods x budgets table per quantity (per attention kernel for the
    timed ones), unmeasured ones left out, the CUDA time only on CUDA; the paper's own numbers as last rows
    only beside rows of the paper's architecture (``paper``)."""
    cuda = on_cuda(df)
    blocks = []
    for col, (name, paper_key) in PAPER_NAMES.items():
        if col not in df or df[col].isna().all() or (col == "cuda_time_reading_ms" and not cuda):
            continue
        timed = col.endswith("_ms") and "attn" in df
        for attn, g in (df.groupby("attn", sort=False) if timed else [(None, df)]):
            index = ["method", "arrangement"] if "arrangement" in g else "method"
            table = g.pivot_table(index=index, columns="budget", values=col, aggfunc="first", sort=False)
            for method, numbers in (PAPER_BY_METHOD.items() if paper else ()):
                table.loc[f"the paper's own: {method}"] = pd.Series(numbers[paper_key])
            table = table[sorted(table.columns, reverse=True)]
            table.columns.name, table.index.name = "K", None
            blocks.append(f"{name}{f', {attn}' if attn else ''}:\n"
                          + table.to_string(float_format=lambda v: f"{v:.4g}", na_rep=""))
    cuda_note = "; CUDA time: this project's reading, defined in no released file" if cuda else ""
    return f"On the paper's definitions (the authors' compiled code{cuda_note}):\n" + "\n".join(blocks)


def spread_summary(df: pd.DataFrame) -> str | None:
    """The timed ratios with their spread, for the terminal: per attention kernel, methods x budgets as
    ``median [min, max]`` of the per-round paired ratios (``prefill_speedup_min``/``_max``); None untimed."""
    blocks = []
    for ratio in ("prefill_speedup", "paper_def_prefill_speedup"):
        if f"{ratio}_min" not in df or df[f"{ratio}_min"].isna().all():
            continue
        text = df.assign(cell=[f"{m:.3g} [{lo:.3g}, {hi:.3g}]" for m, lo, hi in
                               zip(df[ratio], df[f"{ratio}_min"], df[f"{ratio}_max"])])
        for attn, g in text.groupby("attn", sort=False):
            table = g.pivot_table(index="method", columns="budget", values="cell", aggfunc="first",
                                  sort=False)
            table = table[sorted(table.columns, reverse=True)]
            table.columns.name, table.index.name = "K", None
            blocks.append(f"{ratio} vs {BASELINE}, {attn}: median [min, max] of the per-round paired ratios "
                          f"(interleaved repeats):\n" + table.to_string(na_rep=""))
    return "\n".join(blocks) or None


#: ``comparison.md``'s columns, the reader's handful (``comparison.csv`` keeps every one): this project's
#: ratios for any architecture; on the paper's, each of the paper's quantities (``paper_def_*``) beside the
#: paper's number. Columns empty in every row are left out, and the CUDA time everywhere but on CUDA.
SHORT_COLUMNS = ("method", "budget", "arrangement", "flops_ratio", "prefill_speedup", "prefill_frac_of_ideal",
                 "e2e_speedup", "cuda_speedup", "act_reduction", "selector_overhead_pct")
PAPER_SHORT_COLUMNS = ("method", "budget", "paper_def_flops_ratio", "flops_ratio_paper",
                       "paper_def_prefill_speedup",
                       "prefill_speedup_paper", "cuda_time_reading_speedup", "cuda_speedup_paper",
                       "paper_def_act_reduction", "act_reduction_paper")
CUDA_COLUMNS = ("cuda_speedup", "cuda_time_reading_speedup", "cuda_speedup_paper")


def short_comparison(cmp: pd.DataFrame, paper: bool, cuda: bool) -> pd.DataFrame:
    """The columns of ``cmp`` (a :func:`comparison_table`) a reader needs: :data:`PAPER_SHORT_COLUMNS` for
    rows of the paper's architecture (``paper``), else :data:`SHORT_COLUMNS`; CUDA times only when ``cuda``;
    empty ones out."""
    cols = [c for c in (PAPER_SHORT_COLUMNS if paper else SHORT_COLUMNS)
            if c in cmp and cmp[c].notna().any() and (cuda or c not in CUDA_COLUMNS)]
    if paper:  # the paper's number only beside ours
        cols = [c for c in cols if not c.endswith("_paper") or _ours(c) in cols]
    return cmp[cols]


def _ours(paper_col: str) -> str:
    return {"flops_ratio_paper": "paper_def_flops_ratio",
            "prefill_speedup_paper": "paper_def_prefill_speedup",
            "cuda_speedup_paper": "cuda_time_reading_speedup",
            "act_reduction_paper": "paper_def_act_reduction"}[paper_col]


def comparison_markdown(cmp: pd.DataFrame, paper: bool, cuda: bool, paper_arch: str = "") -> str:
    """``comparison.md``: one short table (:func:`short_comparison`) per attention kernel, every column in
    ``comparison.csv``; ``paper_arch``: the architecture of the paper's table (its numbers beside its rows
    only)."""
    which = (f"this {paper_arch} run's ratios on the paper's definitions (`paper_def_*`) beside the paper's "
             "LiteLVLM numbers (`*_paper`)" if paper else
             f"ratios against `{BASELINE}`; the paper's numbers are for {paper_arch} and are not shown "
             "beside another architecture")
    parts = [f"Efficiency comparison: {which}. Every column: `comparison.csv`.", ""]
    groups = cmp.groupby("attn", sort=False, dropna=False) if "attn" in cmp and len(cmp) else [(None, cmp)]
    for attn, g in groups:
        if attn is not None and not (isinstance(attn, float) and math.isnan(attn)):
            parts += [f"## {attn}", ""]
        parts += [to_markdown(short_comparison(g, paper, cuda)), ""]
    return "\n".join(parts)
