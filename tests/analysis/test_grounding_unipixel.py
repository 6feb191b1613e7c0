"""`litelvlm eval-grounding` on the second model family, UniPixel (tiny random weights, CPU): every method the
family offers, one expression per prompt (its protocol), budgets planned against each image's own N."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from litelvlm.budget import Budget
from litelvlm.cli import main
from litelvlm.methods import available_methods, get_method

MODEL = "unipixel-tiny-random:0"


@pytest.fixture(scope="module")
def offered():
    """The methods the unipixel family runs (asked of the family, as the study does)."""
    from litelvlm.registry.families import get_family

    cls = get_family("unipixel")
    return [m for m in available_methods() if cls.method_error(cls, m) is None]


def _run(coco, out, *extra) -> int:
    return main(
        ["eval-grounding", "--refer-dir", str(coco), "--out", str(out), "--model", MODEL, *map(str, extra)])


def test_every_offered_method_runs(coco128, tmp_path, offered):
    # every registered method runs on UniPixel (variants included, IPCV in Qwen2.5-VL's tower) but FlowCut,
    # which reads a [CLS] token's attention in the tower (method_error refuses it:
    # test_a_tower_method_is_refused_before_writing), and those reading CLIP's own grid beyond its per-token
    # scores without a Qwen2.5-VL variant (ViTCoP: only LLaVA code is published)
    specs = {m: get_method(m, "qwen2.5-vl") for m in available_methods()}
    assert set(offered) == {m for m, s in specs.items()
                            if m != "flowcut" and not (s.uses_clip and not s.scores_only)}
    assert offered and len(offered) < len(available_methods())
    # captum over the tiny model: covered by the library tests
    methods = [m for m in offered if m != "saliency"]
    assert _run(coco128, tmp_path, "--image-ids", 34, "--methods", ",".join(methods), "--budgets",
                "64,8", "--ipcv-llm-layer", 2) == 0
    rows = pd.read_parquet(tmp_path / "grounding.parquet")
    summary = pd.read_csv(tmp_path / "summary.csv")
    pairs = {("none", Budget.ALL.column)} | {(m, b) for m in methods if m != "none" for b in (64, 8)}
    assert set(zip(summary["method"], summary["budget"])) == pairs
    n_sent = rows["sent_id"].nunique()
    # one expression per prompt
    assert n_sent >= 2 and (summary["n"] == n_sent).all() and (rows["turn"] == 0).all()
    # pruning at the LLM input shortens the sequence by N - K (N: this image's merged tokens)
    full = rows.loc[rows["method"] == "none", "seq_len"].iloc[0]
    div = rows[rows["method"] == "divprune"].groupby("budget")["seq_len"].first()
    assert div[64] - div[8] == 56 and full > div[64]
    assert (rows.loc[rows["method"] == "fastv", "prune_layer"] == 2).all()
    assert rows["iou"].between(0, 1).all()
    # UniPixel's own metric beside GLaMM's (eval_refcoco.py L29-34): sums with no epsilon, mean IoU, box hits
    for (m, b), g in rows.groupby(["method", "budget"]):
        got = summary[(summary["method"] == m) & (summary["budget"] == b)].iloc[0]
        assert got["unipixel_ciou"] == pytest.approx(g["unipixel_inter"].sum() / g["unipixel_union"].sum(),
                                                     rel=1e-12)
        assert got["unipixel_giou"] == pytest.approx(g["unipixel_iou"].mean(), rel=1e-12)
        assert got["unipixel_box_acc"] == pytest.approx(g["unipixel_hit"].mean(), rel=1e-12)
    # plain masks: the same pixel counts as GLaMM's
    assert (rows["unipixel_inter"] == rows["intersection"]).all()
    cfg = json.loads((tmp_path / "config.json").read_text())
    # the paired CLIP (read by LiteLVLM) named without loading it: the config does not depend on the methods
    assert cfg["model"] == MODEL and cfg["clip_weights"] is None and cfg["paired_clip"][
        "model"] == "tiny336-random:0"


def test_unipixel_sample_metric_on_hand_made_masks():
    """``infer_seg.py`` L239-250: IoU 1 on an empty union (no epsilon), a part count read as a plain mask, and
    the prediction's box against the referent's COCO box at IoU >= 0.5; GLaMM has no metric of its own."""
    import numpy as np

    from litelvlm.registry.families import get_family

    cls = get_family("unipixel")
    pipe = cls.__new__(cls)
    gt = np.zeros((10, 10), np.int64)
    gt[2:6, 2:6] = 1
    gt[4:6, 4:6] = 2  # two parts overlap: still the referent
    pred = np.zeros((10, 10), bool)
    pred[2:6, 2:7] = True
    got = pipe.sample_metrics(pred, gt, (2, 2, 4, 4))
    assert got == {"unipixel_inter": 16, "unipixel_union": 20, "unipixel_iou": 0.8, "unipixel_hit": True}
    empty = pipe.sample_metrics(np.zeros((10, 10), bool), np.zeros((10, 10), np.int64), None)
    assert empty["unipixel_iou"] == 1.0 and empty["unipixel_hit"] is False
    rows = pd.DataFrame([got, empty])
    assert cls.summarize_metrics(rows) == {"unipixel_ciou": 0.8, "unipixel_giou": 0.9,
                                           "unipixel_box_acc": 0.5}
    assert get_family("glamm").abilities.own_metric == "" and get_family("glamm").summarize_metrics(
        rows) == {}


@pytest.mark.parametrize(("method", "why"),
                         [("clip-grid-only", "per-token scores"), ("one-axis-only", "1-D RoPE")])
def test_a_method_the_family_does_not_offer_fails_before_writing(coco128, tmp_path, method, why, capsys,
                                                                  unoffered_methods):
    out = tmp_path / "run"
    assert _run(coco128, out, "--image-ids", 34, "--methods", f"none,{method}", "--budgets", 8) == 2
    assert why in capsys.readouterr().err
    assert not out.exists() or not any(out.iterdir())


def test_budgets_above_every_images_tokens_are_refused_as_retention_refuses_them(coco128, tmp_path, capsys,
                                                                                caplog):
    """Every planned budget above each image's N (UniPixel's N is the image's): each image warns that it
    skips them, and the run, which has nothing to score, is one error, exit 2, nothing left in the folder,
    in the words ``retention`` says it with (not an empty table and exit 0)."""
    from analysis.common.grounding.grounding_runs import NOTHING_FITS

    out = tmp_path / "run"
    assert _run(coco128, out, "--image-ids", 34, "--methods", "random", "--budgets", 100000) == 2
    err = capsys.readouterr().err
    assert NOTHING_FITS in err and "budget(s) 100000 skipped" in caplog.text
    assert not out.exists() or not any(out.iterdir())
    assert main(["retention", "--model", MODEL, "--refer-dir", str(coco128), "--limit-images", "1",
                 "--methods", "random", "--budgets", "100000", "--out", str(tmp_path / "r")]) == 2
    assert NOTHING_FITS in capsys.readouterr().err


def test_a_tower_method_is_refused_before_writing(coco128, tmp_path, capsys):
    """FlowCut reads the [CLS] token's attention inside a vision tower, and Qwen2.5-VL's has no [CLS] token:
    one line, exit 2, nothing written."""
    out = tmp_path / "run"
    assert _run(coco128, out, "--image-ids", 34, "--methods", "none,flowcut", "--budgets", 8) == 2
    err = capsys.readouterr().err
    assert ("flowcut reads the [CLS] token's attention in the vision tower; Qwen2.5-VL's tower has no [CLS]"
            in err)
    assert len(err.strip().splitlines()) == 1 and (not out.exists() or not any(out.iterdir()))


def test_the_vit_context_option(coco128, tmp_path):
    """``--clip-context vit`` (UniPixel's LiteLVLM context from Qwen's own tower; the score is tested in
    tests/litelvlm/test_unipixel_litelvlm.py) runs and is recorded (the default is not, so earlier folders
    resume); GLaMM refuses it before writing."""
    base = ["--image-ids", 34, "--methods", "litelvlm-context", "--budgets", 16]
    assert _run(coco128, tmp_path / "clip", *base) == 0 and _run(coco128, tmp_path / "vit", *base,
                                                                 "--clip-context", "vit") == 0
    cfg = json.loads((tmp_path / "vit" / "config.json").read_text())
    assert cfg["clip_context"] == "vit" and "clip_context" not in json.loads(
        (tmp_path / "clip" / "config.json").read_text())
    a, b = (pd.read_parquet(tmp_path / k / "grounding.parquet") for k in ("clip", "vit"))
    assert len(a) == len(b) > 0
    out = tmp_path / "glamm"
    assert main(["eval-grounding", "--refer-dir", str(coco128), "--out", str(out), "--model", "tiny-random:0",
                 "--image-ids", "34", "--methods", "litelvlm", "--budgets", "16", "--clip-context",
                 "vit"]) == 2
    assert not out.exists() or not any(out.iterdir())


def test_answer_generate(coco128, tmp_path):
    """``--answer generate`` (UniPixel's official greedy decoding, tested against it in
    tests/litelvlm/test_unipixel_generate.py): rows say whether a <|seg|> was generated, the summary its rate;
    recorded only when changed; refused, before writing, for a method pruning inside the LLM and on GLaMM."""
    from litelvlm.unipixel.protocol import GENERATE_KWARGS

    assert GENERATE_KWARGS["max_new_tokens"] == 512
    out = tmp_path / "gen"
    assert _run(coco128, out, "--image-ids", 34, "--methods", "none,random", "--budgets", 8, "--answer",
                "generate") == 0
    rows = pd.read_parquet(out / "grounding.parquet")
    summary = pd.read_csv(out / "summary.csv")
    assert rows["seg_generated"].dtype == bool and rows["generated_tokens"].between(1, 512).all()
    # the official failure: an all-zero mask
    assert (rows.loc[~rows["seg_generated"], "pred_area"] == 0).all()
    got = summary.set_index(["method", "budget"])["seg_generated_rate"]
    assert got.to_dict() == pytest.approx(
        rows.groupby(["method", "budget"])["seg_generated"].mean().to_dict())
    assert json.loads((out / "config.json").read_text())["answer"] == "generate"
    for model, methods, why in ((MODEL, "none,fastv", "fastv prunes inside the LLM"),
                                ("tiny-random:0", "none", "prompts offer teacher-forced")):
        bad = tmp_path / why.split()[0]
        assert main(
            ["eval-grounding", "--refer-dir", str(coco128), "--out", str(bad), "--model", model,
             "--image-ids",
                     "34", "--methods", methods, "--budgets", "8", "--answer", "generate"]) == 2
        assert not bad.exists() or not any(bad.iterdir())
