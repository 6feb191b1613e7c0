"""`litelvlm eval-grounding`'s intervals, comparisons.csv and claims.csv end to end (tiny random GLaMM,
COCO-128): the interval of each cIoU against a slow loop over the run's own rows, the resampling unit of each
protocol, the same bytes for the same command and seed, and a resume with another --n-boot that changes only
the intervals."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pandas as pd
import pytest

from litelvlm.cli import main

pytestmark = pytest.mark.usefixtures("one_glamm_pipeline")

METHODS = ["none", "litelvlm", "random", "fastv"]
#: the leaderboard's columns of a run of :data:`METHODS` (:mod:`analysis.common.stats.leaderboard`)
LEADERBOARD = ["loyalty", "loyalty_lo", "loyalty_hi", "loyalty_mc", "layer_avg_tokens",
               "share_of_unpruned_ciou", "share_of_unpruned_giou", "diff_vs_random_ciou",
               "p_adjusted_vs_random_ciou", "diff_vs_random_giou", "p_adjusted_vs_random_giou",
               "p_adjusted_family_size", "reads_attention"]


def _run(coco, out, protocol, *extra) -> int:
    return main(["eval-grounding", "--refer-dir", str(coco), "--out", str(out), "--model", "tiny-random:0",
                 "--protocol", protocol, "--image-ids", "34,81", "--methods", ",".join(METHODS), "--budgets",
                 "16", *map(str, extra)])


@pytest.fixture(scope="module")
def _shared_runs() -> dict:
    return {}


@pytest.fixture
def per_expression_100(coco128, tmp_path_factory, one_glamm_pipeline, _shared_runs):
    """A ``per-expression --n-boot 100`` run, made once per module; a test copies it before changing it."""
    if "run" not in _shared_runs:
        out = tmp_path_factory.mktemp("per_expression_100") / "run"
        assert _run(coco128, out, "per-expression", "--n-boot", 100) == 0
        _shared_runs["run"] = out
    return _shared_runs["run"]


def slow_interval(rows: pd.DataFrame, keys: list[str], n_boot: int, seed: int) -> tuple[float, float]:
    """The studentized interval of cIoU by a loop: draw units (sorted by ``keys``) with replacement, add up I
    and U over every row of each drawn unit, and divide the replicate's distance from cIoU by its own
    delta-method error (each drawn unit's residual I - cIoU* U over the drawn union)."""
    units = [(float(g["intersection"].sum()), float(g["union"].sum()))
             for _, g in rows.sort_values(keys).groupby(keys, sort=True)]
    n = len(units)

    def ciou_se(drawn):
        inter, union = sum(i for i, _ in drawn), sum(u for _, u in drawn)
        r = inter / (union + 1e-10)
        return r, np.sqrt(n / (n - 1) * sum(((i - r * u) / (union + 1e-10)) ** 2 for i, u in drawn))

    value, se = ciou_se(units)
    idx = np.random.default_rng(seed).integers(0, n, size=(n_boot, n))
    # a draw repeating one unit has no error of its own: an infinite t (0/0 left out)
    ts = [(r - value) / s if s > 1e-8 * se else np.sign(r - value) * np.inf
          for r, s in (ciou_se([units[i] for i in draw]) for draw in idx)]
    ts = [t for t in ts if not np.isnan(t)]
    ends = (value - np.quantile(ts, 0.975, method="higher") * se,
            value - np.quantile(ts, 0.025, method="lower") * se)
    clipped = tuple(min(max(e, 0.0), 1.0) for e in ends)   # a cIoU lies in [0, 1]
    if not np.isfinite(ends).all() or clipped == (0.0, 1.0):   # no finite end, or every value: no interval
        return float("nan"), float("nan")
    return clipped


@pytest.mark.parametrize("protocol, keys, unit",
                         [("per-expression", ["image_id"], "image"), ("official", ["image_id"], "image")])
def test_intervals_comparisons_and_claims(coco128, tmp_path, protocol, keys, unit):
    out = tmp_path / "run"
    assert _run(coco128, out, protocol, "--n-boot", 200, "--seed", 3) == 0
    rows = pd.read_parquet(out / "grounding.parquet")
    summary = pd.read_csv(out / "summary.csv")
    assert list(summary.columns) == ["method", "budget", "ciou", "ciou_lo", "ciou_hi", "ciou_mc", "giou",
                                     "giou_lo", "giou_hi", "giou_mc", "n", "unit", "units", "heavy_tails",
                                     *LEADERBOARD, "weights"]
    # every protocol resamples images, each with all its expressions (issue #67, item 9); the table says so
    assert (summary.unit == "image").all() and (summary.units == 2).all()
    for _, s in summary.iterrows():
        g = rows[(rows.method == s.method) & (rows.budget == s.budget)]
        assert (s.ciou_lo, s.ciou_hi) == pytest.approx(slow_interval(g, keys, 200, 3), rel=1e-12, nan_ok=True)
        assert np.isnan([s.ciou_lo, s.ciou_hi]).all()   # 2 images: half the draws repeat one, no interval
    comparisons = pd.read_csv(out / "comparisons.csv")
    assert set(zip(comparisons.method, comparisons.reference)) == {
        ("litelvlm", "none"), ("random", "none"), ("fastv", "none"), ("random", "litelvlm"),
        ("fastv", "litelvlm"), ("litelvlm", "random"), ("fastv", "random")}   # the leaderboard's after
    assert len(comparisons) == 14 and (comparisons.unit == unit).all() and (comparisons.weights
                                                                            == "random").all()
    assert (comparisons.correction == "holm").all() and (comparisons.p_adjusted >= comparisons.p).all()
    assert (comparisons.test.str.startswith("exact swap test")).all()   # 2 images or 6 expressions: exact
    claims = pd.read_csv(out / "claims.csv")
    assert len(claims) == 4 and (claims.verdict == "not judged").all() and claims.value.notna().all()
    assert set(claims.compared_with) <= {"none", "fastv"}   # random is no "existing method"
    assert json.loads((out / "config.json").read_text())["n_boot"] == 200
    # the text view (printed and summary.txt): each figure with its interval in one cell, at most 10 columns
    assert (out / "summary.txt").read_text().splitlines()[0].split() == ["method", "budget", "ciou", "giou",
                                                                         "n", "unit", "units", "heavy_tails"]


def test_same_command_same_bytes_and_a_resume_with_another_n_boot(coco128, tmp_path, per_expression_100):
    a, b = tmp_path / "a", tmp_path / "b"
    shutil.copytree(per_expression_100, a)   # the module's run of the same command, resumed below
    assert _run(coco128, b, "per-expression", "--n-boot", 100) == 0
    for name in ("summary.csv", "comparisons.csv", "claims.csv"):
        assert (a / name).read_bytes() == (b / name).read_bytes(), name
    before, margins = pd.read_csv(a / "summary.csv"), pd.read_csv(a / "claims.csv")[["lo", "hi"]]
    parts = sorted(p.name for p in (a / "parts").iterdir())
    # the parts stay valid: only the tables change
    assert _run(coco128, a, "per-expression", "--n-boot", 40) == 0
    after = pd.read_csv(a / "summary.csv")
    assert sorted(p.name for p in (a / "parts").iterdir()) == parts
    old = ["method", "budget", "ciou", "giou", "n", "weights"]
    # two images: every studentized interval is [0, 1]; the claims read the exact paired tests, which draw
    # nothing
    assert after[old].equals(before[old]) and pd.read_csv(a / "claims.csv")[["lo", "hi"]].equals(margins)


def test_a_new_boot_seed_recomputes_only_the_statistics(coco128, tmp_path, monkeypatch, per_expression_100):
    """--boot-seed is no new experiment: into the same --out, the model is not called again; the figures stay,
    the intervals move where they draw (the exact tests, and the claims read from them, draw nothing)."""
    out = tmp_path / "run"
    shutil.copytree(per_expression_100, out)   # the module's run, copied: this test changes it
    before = {n: pd.read_csv(out / n) for n in ("summary.csv", "comparisons.csv", "claims.csv")}
    from analysis.grounding import compute

    calls = []
    monkeypatch.setattr(compute, "evaluate_images", lambda *a, **k: calls.append(a) or [])
    assert _run(coco128, out, "per-expression", "--n-boot", 100, "--boot-seed", 7) == 0
    assert calls == []
    after = {n: pd.read_csv(out / n) for n in ("summary.csv", "comparisons.csv", "claims.csv")}
    old = ["method", "budget", "ciou", "giou", "n", "weights"]
    assert after["summary.csv"][old].equals(before["summary.csv"][old])
    assert after["claims.csv"].equals(before["claims.csv"])   # the claims are the exact tests' too
    assert after["comparisons.csv"].equals(before["comparisons.csv"])
    assert json.loads((out / "config.json").read_text())["boot_seed"] == 7
    # --seed is the experiment's
    assert _run(coco128, out, "per-expression", "--n-boot", 100, "--seed", 7) == 2


def _rows(methods: list[str], masks: list[str | None]) -> pd.DataFrame:
    """Two expressions' rows per method, each with the mask ``masks`` gives in turn (None: no mask)."""
    keys = [dict(image_id=34, ref_id=r, sent_id=r, turn=0) for r in (1, 2)]
    rows = [dict(method=m, budget=0 if m == "none" else 16, **k) for m in methods for k in keys]
    return pd.DataFrame(rows).assign(pred_rle=masks)


@pytest.mark.parametrize("methods,masks,warned,loyalty", [
    (["litelvlm", "random"], ["[]"] * 4, False, False),   # no `none`: no loyalty, and nothing to warn of
    (["none", "litelvlm"], ["[]"] * 4, False, True),
    (["none", "litelvlm"], ["[]", "[]", None, "[]"], True, False),  # parts of an earlier version
], ids=["no-baseline", "every-mask", "a-mask-missing"])
def test_loyalty_warns_only_of_missing_masks(caplog, methods, masks, warned, loyalty):
    from analysis.grounding.statistics import with_loyalty

    out = with_loyalty(_rows(methods, masks))
    assert ("lack their masks" in caplog.text) == warned, caplog.text
    assert ("loyalty" in out) == loyalty and "pred_rle" not in out
