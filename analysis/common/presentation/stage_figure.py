"""The figure of a run's time by stage, ``stages.png`` (:mod:`analysis.common.presentation.stage_plots` writes
it from ``stages.csv``'s frame).

One horizontal stacked bar per run, ``none`` at the top and the others in the table's order, one segment per
stage: the figure grows by one row per run (:data:`ROW_INCHES`), so 101 runs stay as legible as 5. The
legend says what each stage drawn holds (:data:`STAGE_HOLDS`); where the run has rates, a black tick on each
bar marks its whole call's roofline (the sum of its stages' rooflines, ``stages.csv``'s ``total`` row). A
frame with an ``attn`` column (``efficiency``) gets one panel per attention kernel. The title names the LLM's
attention kernel and the prefill path as ``config.json``'s ``stage_timing`` records them (:func:`run_label`),
with the dtype and the device; random weights say so under it.
"""

from __future__ import annotations

from collections.abc import Iterable

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from analysis.common.presentation.caveats import draw_notes
from analysis.common.presentation.style import (
    TWO_COLUMN,
    apply_style,
    label_weights,
    model_name,
    palette,
)
from litelvlm.cost.stages import OTHER, STAGES, TOTAL
from litelvlm.methods import is_baseline

#: the segments of a bar, left to right
SEGMENTS = (*STAGES, OTHER)
#: what each stage holds, in a phrase (a stage without one is named alone)
STAGE_HOLDS = {
    "prepare": "resizing, normalising the input; the prompt (CPU)",
    "vision": "image encoders, CLIP's text tower, paired CLIP",
    "selection": "a method's own selection outside the LLM's layers",
    "prefill": "the LLM's decoder layers over the prompt",
    "decode": "the LLM's decoding steps (a generated answer)",
    "mask": "mask decoder (SAM, SAM 2) with its image encoder",
    OTHER: "embedding, projector, Python between the stages",
}
#: each stage's colour (an index of the palette), the same in every figure whatever the stages drawn; a stage
#: without one takes a colour left over
STAGE_COLORS = {"vision": 0, "selection": 1, "prefill": 2, "decode": 3, "mask": 4, OTHER: 5, "prepare": 7}
#: the attention kernels ``stage_timing`` names, in words
KERNELS = {"eager": "explicit softmax(QK^T)V", "sdpa": "PyTorch's scaled_dot_product_attention",
           "flash": "FlashAttention", "litelvlm_sdpa_fa": "FlashAttention through SDPA",
           "flash_attention_2": "FlashAttention 2"}
#: the captures of ``--prefill captured`` (``litelvlm.llm.captured``), in words (``fused`` off CUDA: no graph)
CAPTURES = {"fused": "fused: inductor-compiled decoder layers, replayed as one CUDA graph",
            "fused-cpu": "fused: inductor-compiled decoder layers",
            "graph": "one CUDA graph of the eager decoder layers",
            "compile": "torch.compile of the decoder-layer stack"}
#: inches per run (one bar each) when there are many (few get more), the inches of one legend row, and the
#: inches around the bars and the legend (title, axis)
ROW_INCHES, KEY_INCHES, FRAME_INCHES = 0.17, 0.13, 1.0


def stage_colors() -> dict[str, tuple[float, float, float]]:
    """{stage: colour} of :data:`SEGMENTS` (:data:`STAGE_COLORS`)."""
    colors = palette(10)
    spare = iter(i for i in (8, 9, 6) if i not in STAGE_COLORS.values())
    return {s: colors[STAGE_COLORS[s] if s in STAGE_COLORS else next(spare)] for s in SEGMENTS}


def run_name(method: str, budget) -> str:
    """A run as the figure and the screen name it: ``none``, or ``method@budget``."""
    return str(method) if is_baseline(str(method)) else f"{method}@{budget}"


def _prefill_words(rec: dict, config: dict) -> str:
    """``captured (fused: ...)``: the prefill path a ``stage_timing`` record (else the study's keys) names."""
    prefill = rec.get("prefill") or config.get("prefill") or "eager"
    if prefill == "eager":
        return "eager (each decoder layer called from Python)"
    if prefill == "compiled":
        return "compiled (torch.compile of each decoder layer, called from Python)"
    capture = rec.get("capture") or (config.get("capture") if config.get("capture") != "auto" else None)
    if capture is None:
        return str(prefill)
    kind, _, backend = str(capture).partition("-")
    cpu = str(rec.get("device") or config.get("device") or "").lower().startswith("cpu")
    words = CAPTURES.get(f"{kind}-cpu" if kind == "fused" and cpu else kind, kind)
    return f"{prefill} ({words}{', dynamo eager backend' if backend == 'eager' else ''})"


def run_label(config: dict, attn: str | None = None) -> tuple[str, str]:
    """(``LLM attention: eager (explicit softmax(QK^T)V)``, ``prefill: eager (each decoder layer called from
    Python)``): how the run was timed, read from its ``config.json`` (its ``stage_timing`` record, else the
    study's own keys); ``attn``: a panel's kernel (efficiency's ``attn`` column)."""
    rec = config.get("stage_timing") or {}
    kernels = config.get("attn_implementations") or [config.get("attn")]
    attn = attn or rec.get("attn") or kernels[0] or "the model's default"
    words = KERNELS.get(str(attn))
    return (f"LLM attention: {attn}" + (f" ({words})" if words else ""),
            f"prefill: {_prefill_words(rec, config)}")


def _setup(config: dict) -> str:
    rec = config.get("stage_timing") or {}
    dtype = rec.get("dtype") or config.get("model_dtype") or config.get("dtype") or "?"
    return f"{dtype} · {rec.get('device') or config.get('device') or '?'}"


def _runs(frame: pd.DataFrame) -> list[tuple[str, object]]:
    """(method, budget) of every run, in the table's order with the baseline first."""
    pairs = list(dict.fromkeys(zip(frame["method"], frame["budget"])))
    return sorted(pairs, key=lambda p: not is_baseline(str(p[0])))


def _column(frame: pd.DataFrame, runs: list, stage: str, column: str = "ms") -> np.ndarray:
    """``column`` of ``stage`` for each of ``runs`` (NaN where absent)."""
    if column not in frame:
        return np.full(len(runs), np.nan)
    rows = frame[frame["stage"] == stage].drop_duplicates(["method", "budget"])
    rows = rows.set_index(["method", "budget"])
    return np.array([float(rows[column].get(run, np.nan)) for run in runs])


def _panel(ax, mine: pd.DataFrame, runs: list, colors: dict, fontsize: float) -> None:
    """One panel's bars (a row per run), its roofline ticks and its run names."""
    y = np.arange(len(runs))
    left = np.zeros(len(runs))
    for stage in SEGMENTS:
        ms = np.nan_to_num(_column(mine, runs, stage))
        if ms.sum() > 0:
            holds = STAGE_HOLDS.get(stage)
            ax.barh(y, ms, left=left, height=0.72, color=colors[stage],
                    label=f"{stage}: {holds}" if holds else stage)
        left += ms
    roof = _column(mine, runs, TOTAL, "roofline_ms")
    if np.isfinite(roof).any() and (roof > 0).any():
        ax.plot(np.where(roof > 0, roof, np.nan), y, linestyle="none", marker="|", color="black",
                markersize=min(10.0, ROW_INCHES * 72 * 0.9 * max(1.0, 12 / max(len(runs), 1)) ** 0.5),
                markeredgewidth=1.4, label="roofline of the whole call")
    ax.set_yticks(y, [run_name(m, b) for m, b in runs], fontsize=fontsize)
    ax.set_ylim(len(runs) - 0.5, -0.5)   # none on top
    ax.set_xlabel("time per call (ms)")
    ax.tick_params(axis="x", labelsize=fontsize + 1)


def _layout(panels: int, runs: int, keys: int):
    """(figure, the legend's axes, one axes per panel): the legend's row above the panels' row, each as tall
    as it needs (``keys`` legend entries in two columns, a row per run)."""
    rows_in = max(runs * (ROW_INCHES if runs > 12 else 0.3), 0.9)
    key_in = KEY_INCHES * (-(-keys // 2)) + 0.05
    apply_style()
    fig = plt.figure(figsize=(TWO_COLUMN, rows_in + key_in + FRAME_INCHES), layout="constrained")
    grid = fig.add_gridspec(2, panels, height_ratios=[key_in, rows_in])
    key = fig.add_subplot(grid[0, :])
    key.set_axis_off()
    axes = [fig.add_subplot(grid[1, 0])]
    axes += [fig.add_subplot(grid[1, i], sharey=axes[0], sharex=axes[0]) for i in range(1, panels)]
    return fig, key, axes


def plot_stages(frame: pd.DataFrame, config: dict, model: str, notes: Iterable[str] = ()):
    """The figure of ``frame`` (``stages.csv``'s, :func:`~analysis.common.presentation.stage_plots.
    stages_frame`): one panel per attention kernel (an ``attn`` column), one row per run, ``none`` on top, one
    segment per stage, the whole call's roofline ticked where known; returns the figure."""
    panels = list(frame["attn"].unique()) if "attn" in frame else [None]
    runs = _runs(frame)
    drawn = [s for s in SEGMENTS if (_column(frame, runs, s) > 0).any()]
    roofed = "roofline_ms" in frame and (_column(frame, runs, TOTAL, "roofline_ms") > 0).any()
    fig, key, axes = _layout(len(panels), len(runs), len(drawn) + roofed)
    colors = stage_colors()
    for i, (ax, attn) in enumerate(zip(axes, panels)):
        _panel(ax, frame if attn is None else frame[frame["attn"] == attn], runs, colors,
               6 if len(runs) > 12 else 7)
        if attn is not None:
            ax.set_title(f"LLM attention: {attn}", fontsize=7)
        if i:
            ax.tick_params(labelleft=False)
    labels: dict = {}
    for ax in axes:
        for handle, label in zip(*ax.get_legend_handles_labels()):
            labels.setdefault(label, handle)
    labels = dict(sorted(labels.items(), key=lambda kv: "roofline" in kv[0]))   # the stages, then the tick
    key.legend(list(labels.values()), list(labels), loc="center", ncols=2, fontsize=6, frameon=False,
               handlelength=1.2, columnspacing=1.2, borderaxespad=0)
    attention, prefill = run_label(config)
    if len(panels) > 1:
        attention = "LLM attention: one panel per kernel"
    fig.suptitle(f"{model_name(model)}: where the time of a grounding call goes\n"
                 f"{attention} · {_setup(config)}\n{prefill}", fontsize=7.5)
    label_weights(fig, model)
    draw_notes(fig, notes)
    return fig


__all__ = ["CAPTURES", "KERNELS", "ROW_INCHES", "SEGMENTS", "STAGE_COLORS", "STAGE_HOLDS", "plot_stages",
           "run_label", "run_name", "stage_colors"]
