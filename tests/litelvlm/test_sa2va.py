"""The fourth family, Sa2VA-Qwen2.5-VL (tiny random weights, CPU): presets and model strings, random weights
written in the released layout and loaded back, the masks of the default seed, every registered method through
``eval-grounding`` at every budget, ``validate``, and what the family refuses and why."""

from __future__ import annotations

import json

import pandas as pd
import pytest
import torch
from PIL import Image

from litelvlm.cli import main
from litelvlm.errors import LiteLVLMError
from litelvlm.methods import available_methods

MODEL = "sa2va-tiny-random:0"


@pytest.fixture(scope="module")
def tiny_pipe():
    from litelvlm.registry.families import load_pipeline

    return load_pipeline(MODEL)


def test_presets_and_model_strings():
    from litelvlm.registry.families import card, family_of
    from litelvlm.sa2va.config import PRESETS, RANDOM_SA2VAS

    # the Qwen3-VL presets are tested in tests/litelvlm/sa2va/test_qwen3_pipeline.py, the InternVL3 ones in
    # tests/litelvlm/sa2va/internvl/
    assert set(card("sa2va").presets) == {"sa2va-tiny-random", "sa2va-qwen2_5-vl-3b-random",
                                                "sa2va-qwen2_5-vl-7b-random", "sa2va-qwen3-vl-4b-random",
                                                "sa2va-qwen3-vl-tiny-random", "sa2va-internvl3-2b-random",
                                                "sa2va-internvl3-tiny-random"}
    assert all(family_of(f"{n}:3") == "sa2va" for n in RANDOM_SA2VAS)
    # the released vocabulary: Qwen's 151665 tokens + [SEG], <p>, </p>, <vp>, </vp>
    for name in ("3b", "7b"):
        p = PRESETS[name]
        assert p.vocab_size == 151670 and p.token_ids()["[SEG]"] == 151665 and p.image_size == 1024
        assert (p.min_pixels, p.max_pixels) == (512 * 28 * 28, 2048 * 28 * 28)


def test_random_weights_round_trip_in_the_released_layout(tmp_path):
    """A random tiny Sa2VA written as a released folder and loaded back through the checkpoint path: the same
    tensors, found by ``config.json``'s ``architectures``."""
    from safetensors import safe_open

    from litelvlm.registry.families import family_of, load_pipeline
    from litelvlm.sa2va.checkpoint import build_sa2va, load_sa2va, save_random_sa2va

    folder = save_random_sa2va(tmp_path / "sa2va", "tiny", seed=4)
    cfg = json.loads((folder / "config.json").read_text())
    assert cfg["architectures"] == ["Sa2VAChatModelQwen"] and cfg["model_type"] == "sa2va_chat"
    assert cfg["template"] == "qwen_chat" and cfg["text_config"]["vocab_size"] == 411
    with safe_open(str(folder / "model.safetensors"), framework="pt") as fh:
        names = set(fh.keys())
    assert {n.split(".")[0] for n in names} == {"model", "grounding_encoder", "text_hidden_fcs"}
    assert {"model.model.visual.patch_embed.proj.weight", "model.model.language_model.embed_tokens.weight",
            "model.lm_head.weight", "text_hidden_fcs.0.weight", "text_hidden_fcs.2.bias",
            "grounding_encoder.sam2_model.sam_mask_decoder.iou_token.weight",
            "grounding_encoder.sam2_model.image_encoder.trunk.patch_embed.proj.weight",
            "grounding_encoder.sam2_model.memory_encoder.fuser.layers.0.g_weight",
            "grounding_encoder.sam2_model.maskmem_tpos_enc"} <= names
    assert not {n for n in names if "no_obj_embed_spatial" in n or "obj_ptr_tpos_proj" in n}   # SAM 2.0
    assert family_of(str(folder)) == "sa2va"
    parts = load_sa2va(str(folder))
    qwen, fcs, sam2, tracking = build_sa2va("tiny", seed=4)
    for mine, theirs in ((parts.qwen, qwen), (parts.fcs, fcs), (parts.sam2.model, sam2.model)):
        a, b = mine.state_dict(), theirs.state_dict()
        assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert parts.sam2.tracking.keys() == tracking.keys()
    assert parts.seg_token_id == 406 == parts.processor.tokenizer.convert_tokens_to_ids("[SEG]")
    assert load_pipeline(str(folder)).family == "sa2va"


def test_a_folder_missing_a_tensor_is_named(tmp_path):
    from safetensors.torch import load_file, save_file

    from litelvlm.sa2va.checkpoint import load_sa2va, save_random_sa2va

    folder = save_random_sa2va(tmp_path / "sa2va", "tiny", seed=1)
    sd = load_file(str(folder / "model.safetensors"))
    del sd["text_hidden_fcs.2.weight"]
    save_file(sd, str(folder / "model.safetensors"))
    with pytest.raises(LiteLVLMError, match=r"missing tensor\(s\): text_hidden_fcs.2.weight"):
        load_sa2va(str(folder))


@pytest.mark.slow
@pytest.mark.parametrize("preset", ["3b", "7b"])
def test_full_size_architecture(preset):
    """The released sizes on the meta device: SAM 2 Hiera-L (144 wide, 2-6-36-4 blocks), a 256-wide prompt."""
    from litelvlm.sa2va.checkpoint import build_sa2va, sa2va_tensors

    qwen, fcs, sam2, tracking = build_sa2va(preset, device="meta")
    names = sa2va_tensors(qwen, fcs, sam2, tracking)
    assert names["text_hidden_fcs.2.weight"].shape[0] == 256
    assert names["grounding_encoder.sam2_model.image_encoder.trunk.pos_embed"].shape == (1, 144, 7, 7)
    assert ("model.lm_head.weight" in names) is (preset == "7b")   # the 3B ties it to the embeddings


def test_the_default_seed_predicts_non_empty_masks(tiny_pipe, coco128):
    """Sa2VA comments out SAM 2's object-score gate (sam2.py L3299-3305), so the default seed's masks are not
    blanked: every sample image of the tiny preset gets a mask that is neither empty nor full."""
    for f in sorted((coco128 / "images").glob("*.jpg"))[:3]:
        prep = tiny_pipe.prepare(Image.open(f).convert("RGB"), ["the person"])
        masks = tiny_pipe.ground(prep, "none", tiny_pipe.num_visual(prep)).masks
        assert 0 < masks.float().mean() < 1


def test_describe_labels_the_adaptation(tiny_pipe):
    got = tiny_pipe.describe()
    assert got["family"] == "sa2va" and "this project's adaptation" in got["pruning"]
    assert "this project's" in got["answer"]


def test_the_pipeline_feeds_the_official_fast_processors_pixels(tiny_pipe):
    """The loaded pipeline's vision-tower input is the official pin's (``Qwen2VLImageProcessorFast``), written
    out independently in ``tests/litelvlm/sa2va/test_protocol_image_processor.py``; ``image_resize="pil"`` is
    the labelled option."""
    from tests.litelvlm.sa2va.test_protocol_image_processor import _image, official_pixel_values

    image = _image(333, 517, seed=1)
    bounds = (tiny_pipe.min_pixels, tiny_pipe.max_pixels)
    assert torch.equal(tiny_pipe._image(image)[1]["pixel_values"], official_pixel_values(image, *bounds))
    assert tiny_pipe.describe()["image_resize"].startswith("torchvision (the official")
    tiny_pipe.image_resize = "pil"
    try:
        assert torch.equal(tiny_pipe._image(image)[1]["pixel_values"],
                           official_pixel_values(image, *bounds, fast=False))
        assert "this project's option" in tiny_pipe.describe()["image_resize"]
    finally:
        tiny_pipe.image_resize = "torchvision"


def test_refusals_say_why(tiny_pipe):
    with pytest.raises(LiteLVLMError, match="answer must be one of teacher-forced, generate"):
        tiny_pipe.with_sentences(tiny_pipe.prepare_image(Image.new("RGB", (40, 30))), ["x"], answer="sampled")
    with pytest.raises(LiteLVLMError, match="one expression per prompt"):
        tiny_pipe.with_sentences(tiny_pipe.prepare_image(Image.new("RGB", (40, 30))), ["x", "y"])


def test_eval_grounding_runs(coco128, tmp_path):
    out = tmp_path / "g"
    assert main(
        ["eval-grounding", "--refer-dir", str(coco128), "--out", str(out), "--model", MODEL, "--image-ids",
                 "34", "--methods", "none,fastv,litelvlm", "--budgets", "8"]) == 0
    summary = pd.read_csv(out / "summary.csv")
    assert len(summary) == 3 and summary["ciou"].gt(0).all()
    # the resize is recorded, so a folder of the earlier PIL resize (other numbers) is not resumed
    assert json.loads((out / "config.json").read_text())["image_resize"] == "torchvision"


@pytest.mark.slow
def test_every_offered_method_runs_through_eval_grounding(coco128, tmp_path):
    from litelvlm.registry.families import get_family

    cls = get_family("sa2va")
    offered = [m for m in available_methods() if cls.method_error(cls, m) is None]
    # every registered method applies but those pruning inside a vision tower and those reading CLIP's own
    # grid beyond its scores (as on UniPixel)
    assert set(available_methods()) - set(offered) == {"flowcut", "vitcop"}
    # captum over the tiny model: covered by the library tests
    methods = [m for m in offered if m != "saliency"]
    out = tmp_path / "g"
    assert main(
        ["eval-grounding", "--refer-dir", str(coco128), "--out", str(out), "--model", MODEL, "--image-ids",
                 "34", "--methods", ",".join(methods), "--budgets", "8,2", "--ipcv-llm-layer", "2"]) == 0
    summary = pd.read_csv(out / "summary.csv")
    from litelvlm.budget import Budget

    assert set(zip(summary["method"], summary["budget"])) == {("none", Budget.ALL.column)} | {
        (m, b) for m in methods if m != "none" for b in (8, 2)}
    assert summary["ciou"].gt(0).all()   # non-empty masks at every budget


def test_validate_runs(coco128, tmp_path):
    assert main(["validate", "--model", MODEL, "--refer-dir", str(coco128), "--out", str(tmp_path / "v"),
                 "--repeats", "1", "--threads", "1", "--methods", "none,fastv,divprune", "--budgets", "8,4",
                 "--fastv-layer", "1"]) == 0


@pytest.mark.slow
def test_importance_runs(coco128, tmp_path):
    assert main(["importance", "--model", MODEL, "--refer-dir", str(coco128), "--limit-images", "1",
                 "--max-sentences", "1", "--n-boot", "20", "--out", str(tmp_path / "imp")]) == 0


def test_positions_and_select_run(coco128, tmp_path):
    """``positions`` and ``select`` reach the family through the registry alone."""
    assert main(["positions", "--model", MODEL, "--refer-dir", str(coco128), "--out", str(tmp_path / "pos"),
                 "--methods", "fastv", "divprune", "--budgets", "8"]) == 0
    assert len(pd.read_csv(tmp_path / "pos" / "positions.csv")) == 2
    image = sorted((coco128 / "images").glob("*.jpg"))[0]
    assert main(
        ["select", "--model", MODEL, "--image", str(image), "--method", "fastv", "--budget", "8", "--text",
                 "the bowl", "--save-overlay", str(tmp_path / "sel.png")]) == 0
    assert (tmp_path / "sel.png").stat().st_size > 0
