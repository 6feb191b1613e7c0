"""Efficiency figures: LLM FLOPs, prefill speedup, CUDA-time speedup and activation memory against the
visual-token budget, with the paper's numbers (stars) and the FLOPs-ideal limit (dashed) drawn in.

Every panel that sets our rows beside the paper's stars uses the paper's definitions (the authors' compiled
code, ``analysis.common.measures.paper_efficiency`` / ``analysis.common.measures.layer_timer``) where the
table has them: FLOPs = ``paper_tflops``, prefill = ``paper_prefill_ms`` (the decoder-layer loop), activation
= ``paper_activation_gib`` (storing activation); the CUDA-time panel is this project's reading
(``cuda_time_reading_ms``: the whole pipeline). Tables written before those columns existed fall back to this
project's measured columns.

A video table (an ``arrangement`` column: how a frame's kept CLIP tokens meet the square-only pooling) is
drawn one line per method and arrangement, ``method (arrangement)``, and its dashed limits one per
arrangement, each named (:func:`_label_arrangements`): the official ``pool`` keeps every ratio at 1,
``pool-min`` and ``direct`` show what pruning saves."""

from __future__ import annotations

import numpy as np
import pandas as pd

from analysis.common.measures.paper_efficiency import PAPER_BY_METHOD
from analysis.common.presentation.style import beside_columns, budget_axis, figure, method_label, method_style
from analysis.efficiency.arch import paper_archs
from analysis.efficiency.compare import baseline_rows
from litelvlm.methods import method_names

_PAPER_STYLE = dict(marker="*", s=90, color="k", zorder=5, label="paper (LiteLVLM)")


def _before_llm(d: pd.DataFrame) -> pd.DataFrame:
    """The rows of methods that prune before the LLM (every layer sees the same tokens: ``prune_layer`` 0)."""
    return d[d["prune_layer"] == 0] if "prune_layer" in d else d


def _setup(ax, attn: str | None, df: pd.DataFrame):
    # room for the legend on the right
    fig, ax = (ax.figure, ax) if ax is not None else figure(2, aspect=0.42)
    if attn is None and "attn" in df:
        attn = df["attn"].iloc[0]
    d = df[df["attn"] == attn] if attn is not None and "attn" in df else df
    return fig, ax, _label_arrangements(d), attn


def _arranged(d: pd.DataFrame) -> bool:
    return "arrangement" in d and bool(d["arrangement"].notna().any())


def _label_arrangements(d: pd.DataFrame) -> pd.DataFrame:
    """A video table's rows as one line per method and arrangement, ``method (arrangement)`` (the baseline's
    label alone; rows already so labelled, as the efficiency study passes them, stay); others as they are."""
    if not _arranged(d):
        return d
    raw = d["method"].isin(method_names()) & ~baseline_rows(d["method"]) & d["arrangement"].notna()
    return d.assign(method=d["method"].where(~raw, d["method"] + " (" + d["arrangement"].astype(str) + ")"))


#: the dashed limit lines' styles, one per arrangement of a video table
LIMIT_DASHES = ("--", "-.", (0, (4, 1, 1, 1, 1, 1)))


def _limits(ax, d: pd.DataFrame, col: str, label: str, ratio) -> None:
    """A dashed limit line (``ratio`` of the first ``col`` per budget of the methods pruning before the LLM),
    one per arrangement of a video table, its label naming the arrangement."""
    groups = [(f", {a}", g) for a, g in d.groupby("arrangement", sort=False)] if _arranged(d) else [("", d)]
    for i, (suffix, g) in enumerate(groups):
        lim = _before_llm(g).groupby("budget")[col].first()
        ax.plot(lim.index, ratio(lim.to_numpy(float)), color="k", ls=LIMIT_DASHES[i % len(LIMIT_DASHES)],
                lw=1, label=label + suffix)


#: the line style of each arrangement of a video table, in the table's order (a method keeps its colour)
ARRANGEMENT_LINES = ("-", "--", ":")


def _line_style(label: str, arrangements: list[str]) -> dict:
    """The style of a line: its method's (:func:`method_style`), and for ``method (arrangement)`` the method's
    colour and marker with the arrangement's line style."""
    base, _, rest = label.partition(" (")
    if base in method_names() and rest.removesuffix(")") in arrangements:
        return {**method_style(base), "ls": ARRANGEMENT_LINES[arrangements.index(rest.removesuffix(")")) % 3]}
    return method_style(label)


def _methods(d: pd.DataFrame):
    """(method, rows sorted by budget, its fixed style) for every pruning method, the paper's own first."""
    d = d[~baseline_rows(d["method"])]
    arrangements = [str(a) for a in d["arrangement"].dropna().unique()] if _arranged(d) else []
    for method in sorted(d["method"].unique(), key=lambda m: (m not in PAPER_BY_METHOD, m)):
        yield method, d[d["method"] == method].sort_values("budget"), _line_style(method, arrangements)


#: Points closer than this share of the y range are drawn side by side (they would hide each other).
OVERLAP = 0.015
#: The widest step between side-by-side points, in log2 units of the budget axis.
MAX_STEP = 0.05


def _spread(series: dict[str, tuple[np.ndarray, np.ndarray]]) -> tuple[dict[str, np.ndarray], bool]:
    """x positions that show every method: at each budget, methods whose values coincide (within
    :data:`OVERLAP` of the y range) are spread sideways around it, in drawing order (LiteLVLM first, at the
    left); returns the x arrays and whether any point moved."""
    ys = np.concatenate([y[np.isfinite(y)] for _, y in series.values()] or [np.zeros(1)])
    tol = OVERLAP * max(float(ys.max() - ys.min()), 1e-12) if len(ys) else 0.0
    budgets = sorted({float(b) for x, _ in series.values() for b in x})
    gaps = np.diff(np.log2(budgets)) if len(budgets) > 1 else np.array([1.0])
    shifts = {m: np.zeros(len(x)) for m, (x, _) in series.items()}
    for b in budgets:
        pts = [(m, i, y[i]) for m,
               (x, y) in series.items() for i in np.flatnonzero(x == b) if np.isfinite(y[i])]
        pts.sort(key=lambda p: p[2])
        clusters, cur = [], []
        for p in pts:
            if cur and p[2] - cur[-1][2] > tol:
                clusters.append(cur)
                cur = []
            cur.append(p)
        clusters += [cur] if cur else []
        for c in (c for c in clusters if len(c) > 1):
            order = list(series)
            c.sort(key=lambda p: order.index(p[0]))
            step = min(MAX_STEP, 0.8 * float(gaps.min()) / len(c))
            for k, (m, i, _) in enumerate(c):
                shifts[m][i] = (k - (len(c) - 1) / 2) * step
    moved = any(s.any() for s in shifts.values())
    return {m: x * 2.0 ** shifts[m] for m, (x, _) in series.items()}, moved


def _twins(series: dict[str, tuple[np.ndarray, np.ndarray]]) -> dict[str, list[str]]:
    """{first method: every method whose whole series equals its own (same budgets, values within 1e-9)}, in
    drawing order: equal lines are drawn once, their legend entry naming every one of them."""
    groups: dict[str, list[str]] = {}
    for m, (x, y) in series.items():
        lead = next((k for k in groups if np.array_equal(series[k][0], x)
                     and np.allclose(series[k][1], y, rtol=1e-9, atol=0, equal_nan=True)), None)
        if lead:
            groups[lead].append(m)
        else:
            groups[m] = [m]
    return groups


def _group_label(methods: list[str]) -> str:
    """One legend entry for equal lines: their names joined by " = ", three to a row (a method of this
    project's own marked ‡ alone, as its full label would crowd the axes out)."""
    if len(methods) == 1:
        return method_label(methods[0])
    names = [m + "‡" if method_label(m) != m else m for m in methods]
    return "\n".join(" = ".join(names[i:i + 3]) for i in range(0, len(names), 3))


def _draw_methods(ax, d: pd.DataFrame, y) -> bool:
    """Every method, none hidden under another: methods with equal values at every budget as one line whose
    legend entry names them all (in the first one's style), other coinciding points side by side
    (:func:`_spread`); returns whether any point moved (:func:`_label` says so)."""
    styles = {m: st for m, _, st in _methods(d)}
    series = {m: (g["budget"].to_numpy(float), np.asarray(y(g), float)) for m, g, _ in _methods(d)}
    groups = _twins(series)
    xs, moved = _spread({m: series[m] for m in groups})
    for lead, members in groups.items():
        ax.plot(xs[lead], series[lead][1], ms=3, label=_group_label(members),
                **styles[lead])
    return moved or any(len(m) > 1 for m in groups.values())


def _label(ax, moved: bool) -> None:
    """The budget axis's label, saying when equal values were drawn once or side by side."""
    if moved:
        ax.set_xlabel(ax.get_xlabel() + "; equal lines drawn once (a = b), equal points side by side")


def _paper_stars(ax, d: pd.DataFrame, key: str, invert: bool = False) -> None:
    """The paper's own ratios (LiteLVLM on GLaMM-7B) as stars, only beside rows of the paper's architecture:
    baseline / pruned, or pruned / baseline with ``invert``."""
    if "arch" not in d or not d["arch"].isin(paper_archs()).all():
        return
    for numbers in PAPER_BY_METHOD.values():
        vals = numbers[key]
        pk = [k for k in vals if k != 576]
        ax.scatter(pk, [(vals[k] / vals[576]) if invert else (vals[576] / vals[k]) for k in pk],
                   **_PAPER_STYLE)


def _legend(ax) -> None:
    """The legend outside the axes, on the right: its paper-star handle is never read as a data point; in two
    columns past :data:`~analysis.common.presentation.style.BESIDE_ROWS` entries (every method)."""
    ax.legend(fontsize=6, loc="upper left", bbox_to_anchor=(1.02, 1.0), borderaxespad=0.0,
              ncol=beside_columns(len(ax.get_legend_handles_labels()[0])))


def _pick(d: pd.DataFrame, *cols: str) -> str:
    """The first of ``cols`` that ``d`` holds with a number in it (else the last)."""
    return next((c for c in cols if c in d and d[c].notna().any()), cols[-1])


def plot_flops_vs_budget(df: pd.DataFrame, ax=None, attn: str | None = None):
    """LLM FLOPs (the paper's definition) relative to the 576-token baseline, per method; paper's ratios as
    stars. Returns (fig, ax)."""
    fig, ax, d, attn = _setup(ax, attn, df)
    col = _pick(d, "paper_tflops", "llm_tflops_measured")
    base = float(d.loc[baseline_rows(d["method"]), col].iloc[0]) if baseline_rows(d["method"]).any() \
        else float(d[col].max())
    moved = _draw_methods(ax, d, lambda g: g[col] / base)
    _paper_stars(ax, d, "flops_tb", invert=True)
    budget_axis(ax, d["budget"])
    _label(ax, moved)
    ax.set_ylabel("LLM FLOPs / baseline" + (" (paper's count)" if col == "paper_tflops" else ""))
    ax.set_title(f"LLM prefill FLOPs ({d['arch'].iloc[0] if 'arch' in d else ''})")
    _legend(ax)
    return fig, ax


def _ideal(ax, d: pd.DataFrame) -> None:
    """The FLOPs-ideal speedup of pruning before the LLM (baseline FLOPs / pruned FLOPs), dashed."""
    col = _pick(d, "paper_flops_speedup", "flops_ideal_speedup")
    _limits(ax, d, col, "FLOPs-ideal (CLIP-side pruning)", lambda v: v)


def _speedup_plot(df, ax, attn, col: str, paper: str, ylabel: str, title: str):
    fig, ax, d, attn = _setup(ax, attn, df)
    _ideal(ax, d)
    moved = _draw_methods(ax, d, lambda g: g[col])
    _paper_stars(ax, d, paper)
    budget_axis(ax, d["budget"])
    _label(ax, moved)
    base = d.loc[baseline_rows(d["method"]), "budget"]  # all N tokens: the grid's N, or the image's
    ax.set_ylabel(ylabel.format(n=int(base.iloc[0]) if len(base) else int(d["budget"].max())))
    dev = d["device"].iloc[0] if "device" in d else ""
    ax.set_title(f"{title} ({attn}, {dev})", fontsize=7)
    _legend(ax)
    return fig, ax


def plot_prefill_vs_budget(df: pd.DataFrame, ax=None, attn: str | None = None):
    """Prefill speedup per method (the paper's definition: the decoder-layer loop), the FLOPs-ideal speedup
    (dashed) and the paper's. Returns (fig, ax)."""
    col = _pick(df, "paper_def_prefill_speedup", "prefill_speedup")
    title = "LLM prefill speedup" + (" (decoder-layer loop)" if col == "paper_def_prefill_speedup" else "")
    return _speedup_plot(df, ax, attn, col, "prefill_ms", "prefill speedup vs {n} tokens", title)


def plot_cuda_time_vs_budget(df: pd.DataFrame, ax=None, attn: str | None = None):
    """CUDA-time speedup per method (GPU rows only; this project's reading of the paper's CUDA time: the whole
    pipeline), FLOPs-ideal and the paper's. Returns (fig, ax)."""
    col = _pick(df, "cuda_time_reading_speedup", "e2e_cuda_speedup", "cuda_speedup")
    return _speedup_plot(df, ax, attn, col, "cuda_ms", "CUDA-time speedup vs {n} tokens",
                         "CUDA time (this project's reading: whole pipeline)")


def has_cuda_time(df: pd.DataFrame) -> bool:
    """Whether ``df`` holds CUDA-time measurements (GPU runs)."""
    return any(c in df and df[c].notna().any() for c in ("e2e_cuda_ms", "llm_cuda_ms"))


def plot_memory_vs_budget(df: pd.DataFrame, ax=None, attn: str | None = None):
    """Activation-memory reduction per method (the paper's storing activation where the table has it, else
    measured on the device, else on meta), the token-count ratio (dashed) and the paper's. Returns (fig,
    ax)."""
    fig, ax, d, attn = _setup(ax, attn, df)
    col = _pick(d, "paper_act_reduction", "act_reduction", "meta_act_reduction")
    base_n = float(d.loc[baseline_rows(d["method"]),
                         "n_tokens"].iloc[0]) if baseline_rows(d["method"]).any() else float(
        d["n_tokens"].max())
    _limits(ax, d, "n_tokens", "token-count ratio (linear in n)", lambda v: base_n / v)
    moved = _draw_methods(ax, d, lambda g: g[col])
    _paper_stars(ax, d, "activations_gb")
    budget_axis(ax, d["budget"])
    _label(ax, moved)
    ax.set_ylabel("activation memory reduction")
    src = {"paper_act_reduction": "paper's storing activation",
           "act_reduction": "measured"}.get(col, "meta-device count")
    ax.set_title(f"LLM activation memory ({attn}, {src})", fontsize=7)
    _legend(ax)
    return fig, ax
