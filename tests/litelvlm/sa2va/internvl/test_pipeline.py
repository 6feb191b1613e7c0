"""``Sa2VAInternVLPipeline`` (tiny random weights, CPU): the family builds it for an InternVL3 model string or
folder, the methods its tower allows run (1-D positions: each method's own rule), the others are refused by
name with the reason, a video is pruned with its blocks joined, the generated answer stops at the official
limit, and ``eval-grounding``, ``eval-video`` and ``validate`` run the preset."""

from __future__ import annotations

import json

import pandas as pd
import pytest
import torch

from litelvlm.cli import main
from litelvlm.errors import LiteLVLMError
from tests.fixtures.images import noise_image, noise_video

MODEL = "sa2va-internvl3-tiny-random:0"


def test_the_family_builds_it_by_backbone(internvl_tiny):
    """A random preset's name and a folder declaring ``Sa2VAChatModel`` both name the InternVL3 backbone,
    whose pipeline the family's loader builds; the Qwen-VL presets keep theirs."""
    from litelvlm.registry.families import family_of
    from litelvlm.sa2va.backbones import BACKBONE_PIPELINES
    from litelvlm.sa2va.internvl.pipeline import Sa2VAInternVLPipeline
    from litelvlm.sa2va.qwen3_checkpoint import backbone_of

    assert type(internvl_tiny.pipe) is Sa2VAInternVLPipeline and internvl_tiny.pipe.family == "sa2va"
    assert backbone_of(MODEL) == backbone_of(str(internvl_tiny.folder)) == "internvl3"
    assert backbone_of("sa2va-tiny-random:0") == "qwen2.5-vl"
    assert BACKBONE_PIPELINES["internvl3"].get() is Sa2VAInternVLPipeline
    assert family_of(MODEL) == family_of("sa2va-internvl3-2b-random") == "sa2va"


def test_what_it_refuses_says_why(internvl_tiny):
    """The family contract's rules refuse what reads CLIP's own grid, a vision-tower stage or CLIP with an
    LLM-side method; the backbone's abilities refuse ``downsample`` by name; the 1-D RoPE methods run."""
    pipe = internvl_tiny.pipe
    assert "CLIP's features or attention on CLIP's own patch grid" in pipe.method_error("vispruner")
    assert "CLIP's features or attention" in pipe.method_error("cdpruner")
    assert "InternViT's tower stage runs a block as its two branches only" in pipe.method_error("flowcut")
    assert "several 448-px tiles" in pipe.method_error("downsample")
    runs = ("sparsevlm", "ivc-prune", "fastv", "litelvlm", "random")
    assert all(pipe.method_error(m) is None for m in runs)
    assert pipe.spec("v2drop").backbone == ""   # the LLaVA form, no Qwen2.5-VL variant
    from litelvlm.sa2va.internvl.pipeline import Sa2VAInternVLPipeline

    with pytest.raises(LiteLVLMError, match="context='vit' reads Qwen2.5-VL's vision tower"):
        Sa2VAInternVLPipeline(pipe.model, pipe.tokenizer, pipe.fcs, pipe.sam2, context="vit")
    with pytest.raises(LiteLVLMError, match="--image-resize pil"):
        Sa2VAInternVLPipeline.part_options(type("P", (), {"config": {}})(), {"image_resize": "pil"})


def test_describe_labels_the_adaptation(internvl_tiny):
    d = internvl_tiny.pipe.describe()
    assert d["backbone"] == "InternVL3" and "this project's adaptation" in d["pruning"]
    assert "this project's adaptation" in d["clip"]["map"] and d["clip"]["model"] == "tiny336-random:0"
    assert d["positions"].startswith("1-D RoPE") and "this project's adaptation" in d["video_pruning"]


def test_methods_keep_their_own_position_rule(internvl_tiny):
    """1-D positions: FastV's kept tokens keep theirs (its official rule), a method pruning at the LLM input
    renumbers; N counts the <IMG_CONTEXT> tokens (one tile: 256)."""
    pipe = internvl_tiny.pipe
    prep = pipe.prepare(noise_image(40, 40, seed=1), ["the cat"])
    assert pipe.num_visual(prep) == 256 and prep.grid.num_tiles == 1 and pipe.visual_grid(prep) == (16, 16)
    for method, rule in (("fastv", "keep"), ("divprune", "renumber")):
        out = pipe.ground(prep, method, 40)
        assert out.position_rule == rule and out.masks.shape == (1, 40, 40)


@pytest.mark.slow
def test_every_method_it_offers_runs(internvl_tiny):
    from litelvlm.methods import available_methods

    pipe = internvl_tiny.pipe
    prep = pipe.prepare(noise_image(40, 40, seed=2), ["the cat"])
    offered = [m for m in available_methods() if pipe.method_error(m) is None and m != "saliency"]
    assert {"none", "litelvlm", "random", "fastv", "dart", "sparsevlm", "divprune", "v2drop"} <= set(offered)
    for method in offered:
        out = pipe.ground(prep, method, None if pipe.spec(method).baseline else 17)
        assert out.masks.shape == (1, 40, 40), method


def test_a_pruned_video_joins_its_frames_blocks(internvl_tiny):
    """A video's official prompt holds one <img> block per frame; pruned, the rows between the blocks (</img>,
    \\n, <img>) are dropped, the kept rows keep their official positions (this project's adaptation)."""
    pipe = internvl_tiny.pipe
    prep = pipe.with_sentences(pipe.prepare_video(noise_video(2, 30, 50, seed=3)), ["the bird"])
    assert pipe.num_visual(prep) == 2 * 256
    out = pipe.ground(prep, "divprune", 40)
    assert out.masks.shape == (1, 2, 30, 50)
    assert out.seq_len == len(prep.input_ids) - 3 - (2 * 256 - 40)
    with pytest.raises(LiteLVLMError, match="downsample"):
        pipe.ground(prep, "downsample", 40)


def test_the_generated_answer_stops_at_the_limit(internvl_tiny):
    """``answer="generate"``: greedy decoding after the official prompt, stopped at ``max_new_tokens``; no
    generated [SEG] gives no mask."""
    pipe = internvl_tiny.pipe
    prep = pipe.with_sentences(pipe.prepare_image(noise_image(40, 40, seed=4)), ["the cat"],
                               answer="generate")
    pipe.max_new_tokens = 3
    try:
        out = pipe.ground(prep, "none")
    finally:
        del pipe.max_new_tokens
    assert 1 <= len(out.generated) <= 3 and pipe.seg_token_id not in out.generated.tolist()
    assert not out.masks.any()
    assert pipe.stop_ids == {pipe.tokenizer.convert_tokens_to_ids(t) for t in ("<|im_end|>", "<|endoftext|>")}


def test_eval_grounding_runs(coco128, tmp_path):
    out = tmp_path / "g"
    assert main(["eval-grounding", "--refer-dir", str(coco128), "--out", str(out), "--model", MODEL,
                 "--image-ids", "34", "--methods", "none,litelvlm", "--budgets", "8"]) == 0
    summary = pd.read_csv(out / "summary.csv")
    assert len(summary) == 2 and summary["ciou"].between(0, 1).all()


@pytest.mark.slow
def test_validate_runs(coco128, tmp_path):
    assert main(["validate", "--model", MODEL, "--refer-dir", str(coco128), "--out", str(tmp_path / "v"),
                 "--repeats", "1", "--threads", "1", "--methods", "none,fastv,divprune", "--budgets", "8,4",
                 "--fastv-layer", "1"]) == 0


@pytest.mark.slow
def test_eval_video_runs_and_refuses_by_backbone(tmp_path):
    """The video study on the preset; a method the Qwen-VL backbones run but InternVL3 refuses is named before
    anything is written (the runner asks the loaded backbone)."""
    fast = ["--model", MODEL, "--anno-sets", "0", "--synthetic-videos", "1", "--synthetic-frames", "6",
            "--synthetic-seed", "11"]
    out = tmp_path / "video"
    assert main(["eval-video", "--out", str(out), *fast, "--methods", "fastv,litelvlm", "--budgets",
                 "196"]) == 0
    s = pd.read_csv(out / "summary.csv")
    assert list(zip(s.method, s.budget, strict=True)) == [("none", 576), ("fastv", 196), ("litelvlm", 196)]
    config = json.loads((out / "config.json").read_text())
    assert "</img>" in config["video_pruning"]
    refused = tmp_path / "refused"
    assert main(["eval-video", "--out", str(refused), *fast, "--methods", "visionzip", "--budgets",
                 "196"]) == 2
    assert not (refused / "summary.csv").exists()


def test_no_write_builds_the_written_weights(internvl_tiny):
    """``validate --no-write`` builds the preset in memory: the weights its folder holds."""
    from litelvlm.models.random_weights import no_write
    from litelvlm.sa2va.internvl.loading import load_internvl

    with no_write():
        parts = load_internvl(MODEL)
    written = internvl_tiny.pipe.model.state_dict()
    assert all(torch.equal(v, written[k]) for k, v in parts.model.state_dict().items())
