"""``litelvlm eval-video`` on the synthetic Ref-DAVIS set: VideoGLaMM (tiny, random weights) with per-frame
pruning, J / F / J&F per method and per-frame budget, resumable, deterministic, its refusals before anything
is written."""

from __future__ import annotations

import pandas as pd
import pytest

from litelvlm.cli import main

FAST = ["--anno-sets", "0", "--synthetic-videos", "1", "--synthetic-frames", "4", "--synthetic-seed", "11"]


def _summary(out):
    return pd.read_csv(out / "summary.csv")


#: the LLM-side methods the family runs on the 2-layer tiny model by default (SparseVLM's three stages need
#: more layers; the oracles and CDPruner / VScan, which read one image's CLIP trace, are not offered)
LLM_SIDE = ["dart", "divprune", "divprune+random-deep", "fastv", "ivc-prune", "random-deep", "v2drop"]
#: the LLM-side methods of the fast test (the slow one runs the default methods: every one the family runs)
FAST_LLM_SIDE = ["divprune", "fastv"]


# early: about 6 s on one worker; near the end of the collection it kept that worker running alone
@pytest.mark.parametrize("every", [pytest.param(False, id="two-per-frame", marks=pytest.mark.early),
                                   pytest.param(True, id="every-per-frame", marks=pytest.mark.slow)])
def test_every_method_at_the_paper_budgets_resume_and_refusals(tmp_path, every):
    """Every per-frame method (two in the default suite, LiteLVLM and VisPruner; all of them with ``-m slow``)
    and two LLM-side methods at the paper's per-frame budgets 196 and 81, through the family's ``ground``: an
    LLM-side method keeps round(3328 K / 576) of the LLM's visual tokens."""
    from litelvlm.videoglamm.pruning import per_frame_methods

    out = tmp_path / "video"
    methods = per_frame_methods()
    assert {"vispruner", "litelvlm", "visionzip", "random"} <= set(methods)
    methods = methods if every else ["litelvlm", "vispruner"]
    argv = [*FAST, "--methods", ",".join(methods + FAST_LLM_SIDE)]
    assert main(["eval-video", "--out", str(out), *argv]) == 0
    s = _summary(out)
    assert list(zip(s.method, s.budget, strict=True)) == [("none", 576)] + [
        (m, b) for m in methods + FAST_LLM_SIDE for b in (196, 81)]
    clip = s[~s.method.isin(FAST_LLM_SIDE)]
    assert (clip.context_tokens == 144).all() and (s.weights == "random").all() and (
        clip.llm_visual_tokens == 3328).all()
    llm = s[s.method.isin(FAST_LLM_SIDE)]
    assert llm.context_tokens.isna().all() and (llm.llm_visual_tokens
                                                == llm.budget.map({196: 1132, 81: 468})).all()
    assert s[["J", "F", "J&F"]].apply(lambda c: c.between(0, 1)).all().all()
    assert ((s.J + s.F) / 2 - s["J&F"]).abs().max() < 1e-12 and (s.objects == 1).all()
    expr = pd.read_parquet(out / "expressions.parquet")
    assert len(expr) == len(s) and set(expr.anno_set) == {0} and expr.sentence.str.len().min() > 0
    # one object per video: the DAVIS J of the set is the expression's own frame mean
    assert (expr.set_index(["method", "budget"]).J - s.set_index(["method", "budget"]).J).abs().max() < 1e-12
    first = (out / "summary.csv").read_bytes()
    parts = sorted(p.name for p in (out / "parts").iterdir())
    assert main(["eval-video", "--out", str(out), *argv]) == 0   # resumes
    assert (out / "summary.csv").read_bytes() == first and sorted(p.name
                                                                  for p in (out / "parts").iterdir()) == parts
    # another configuration in the same folder is refused and changes nothing
    assert main(["eval-video", "--out", str(out), "--clip-text", "question", *argv]) == 2
    assert (out / "summary.csv").read_bytes() == first


@pytest.mark.parametrize("argv", [["--methods", "cdpruner"], ["--methods", "none"], ["--budgets", "120"],
                                  ["--budgets", "577", "--arrangement", "direct"], ["--anno-sets", "4"],
                                  ["--methods", "vispruners"]])
def test_refused_before_writing(tmp_path, argv):
    out = tmp_path / "video"
    assert main(["eval-video", "--out", str(out), *argv]) == 2
    assert not out.exists()


@pytest.mark.slow
def test_every_per_frame_method_matches_the_ref_davis_protocol(tmp_path):
    """Every per-frame method at 196 and 81; the unpruned row's set-0 J-Mean and F-Mean are those of
    ``evaluate_ref_davis`` (the official Ref-DAVIS loop) on the same folder."""
    from litelvlm.video.synthetic import write_synthetic_videos
    from litelvlm.videoglamm.checkpoint import load_videoglamm
    from litelvlm.videoglamm.pruning import per_frame_methods
    from litelvlm.videoglamm.referdavis import evaluate_ref_davis

    data = write_synthetic_videos(tmp_path / "data", videos=1, frames=4, size=(64, 48), seed=1)
    out = tmp_path / "video"
    assert main(["eval-video", "--out", str(out), "--video-dir", str(data), "--anno-sets", "0"]) == 0
    s = _summary(out)
    assert list(s.method) == ["none"] + [m for m in per_frame_methods() + LLM_SIDE for _ in (196, 81)]
    model, tok, _ = load_videoglamm("videoglamm-tiny-random:0")
    ref = list(evaluate_ref_davis(model, tok, data).values())[0]
    none = s.iloc[0]
    assert abs(none.J - ref.j_mean) < 1e-12 and abs(none.F - ref.f_mean) < 1e-12 and none.objects == 2
