"""Grounding plot functions and the `grounding` figure set's reader, on hand-made summaries."""

from __future__ import annotations

import matplotlib
import pandas as pd
import pytest

from analysis.grounding.compute import load_grounding
from analysis.grounding.plots import plot_grounding_protocols, plot_iou_vs_budget, plot_protocol_difference
from litelvlm.errors import LiteLVLMError
from litelvlm.runs.io import write_csv, write_json

matplotlib.use("Agg")


def _summary(protocol: str, shift: float = 0.0) -> pd.DataFrame:
    rows = [("none", 576, 0.5)] + [(m, b, 0.1 * i + b / 1000 + shift) for i,
                                   m in enumerate(["litelvlm", "random"])
                                   for b in (32, 64, 192)]
    return pd.DataFrame([{"method": m, "budget": b, "ciou": v, "giou": v - 0.01, "n": 4, "protocol": protocol}
                         for m, b, v in rows])


def test_iou_vs_budget_lines_and_baseline():
    s = _summary("official")
    fig, ax = plot_iou_vs_budget(s, "giou", protocol="official")
    lines = {ln.get_label(): ln for ln in ax.get_lines()}
    assert set(lines) == {"litelvlm", "random", "none (K=576)"}
    assert list(lines["litelvlm"].get_xdata()) == [32, 64, 192]
    assert list(lines["random"].get_ydata()) == pytest.approx([0.1 + 0.032 - 0.01, 0.1 + 0.064 - 0.01,
                                                                0.1 + 0.192 - 0.01])
    assert list(lines["none (K=576)"].get_ydata()) == [0.49, 0.49]
    assert ax.get_ylabel() == "gIoU"
    with pytest.raises(ValueError, match="metric"):
        plot_iou_vs_budget(s, "miou")


def test_protocols_side_by_side_and_difference(tmp_path):
    for p, shift in (("per-expression", 0.0), ("official", 0.02)):
        d = tmp_path / p
        write_csv(d / "summary.csv", _summary(p, shift).drop(columns="protocol"))
        write_json(d / "config.json", {"protocol": p})
    tables = load_grounding(tmp_path)
    assert set(tables["summary"]["protocol"]) == {"per-expression", "official"}
    diff = tables["difference"]
    assert diff.loc[diff["method"] != "none", "delta_ciou"].to_numpy() == pytest.approx([0.02] * 6)
    fig, axes = plot_grounding_protocols(tables["summary"], "ciou")
    assert [a.get_title() for a in axes] == ["per-expression", "official"]
    assert all(len(a.get_lines()) == 3 for a in axes)
    fig, ax = plot_protocol_difference(diff, "ciou")
    assert {ln.get_label() for ln in ax.get_lines() if not ln.get_label().startswith("_")} == \
        {"litelvlm", "random", "none"}
    with pytest.raises(LiteLVLMError, match="no eval-grounding results"):
        load_grounding(tmp_path / "per-expression" / "nothing")
