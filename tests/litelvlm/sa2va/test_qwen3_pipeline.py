"""Sa2VA-Qwen3-VL as presets of the ``sa2va`` family (tiny random weights, CPU): the presets and model
strings, random weights written in the released layout and loaded back, a released folder recognised by its
config, the prompt, the labels of what is this project's, the refusals and their reasons, the attention rows
of Qwen3's q/k-normed attention, and the commands that run it (``eval-grounding``; ``validate`` and
``eval-video`` marked slow)."""

from __future__ import annotations

import json

import pandas as pd
import pytest
import torch

from litelvlm.cli import main
from tests.fixtures.images import noise_image

MODEL = "sa2va-qwen3-vl-tiny-random:0"


def test_presets_and_model_strings():
    """ByteDance/Sa2VA-Qwen3-VL-4B: Qwen3's 151669 tokens + [SEG], <p>, </p>, <vp>, </vp> (``qwen3vl.py``
    ``add_special_tokens`` resizes the rows to the tokenizer's length), the released pixel bounds
    (``models_qwen3vl/modeling_sa2va_qwen.py`` L45-46), SAM 2 Hiera-L at 1024 px."""
    from litelvlm.registry.families import card, family_of
    from litelvlm.sa2va.config import PRESETS

    presets = card("sa2va").presets
    assert presets["sa2va-qwen3-vl-4b-random"] == "qwen3-vl-4b" and family_of(f"{MODEL[:-2]}:3") == "sa2va"
    p = PRESETS["qwen3-vl-4b"]
    assert (p.backbone, p.vocab_size, p.token_ids()["[SEG]"], p.token_ids()["</vp>"]) == ("qwen3-vl", 151674,
                                                                                        151669, 151673)
    assert (p.min_pixels, p.max_pixels, p.image_size, p.sam2, p.full_size) == (
        512 * 28 * 28, 2048 * 28 * 28, 1024, "sam2_hiera_l", True)
    assert PRESETS["qwen3-vl-tiny"].vocab_size == 415 and not PRESETS["qwen3-vl-tiny"].full_size
    assert PRESETS["3b"].backbone == "qwen2.5-vl" and PRESETS["3b"].vocab_size == 151670   # unchanged


def test_random_weights_round_trip_in_the_released_layout(tmp_path):
    """A random tiny Sa2VA-Qwen3-VL written as a released folder and loaded back through the checkpoint path:
    the same tensors, the Qwen3-VL classes chosen by ``config.json``'s ``text_config``."""
    from safetensors import safe_open

    from litelvlm.registry.families import family_of, load_pipeline
    from litelvlm.sa2va.checkpoint import build_sa2va, load_sa2va, save_random_sa2va
    from litelvlm.sa2va.qwen3_pipeline import Sa2VAQwen3Pipeline

    folder = save_random_sa2va(tmp_path / "sa2va", "qwen3-vl-tiny", seed=4)
    cfg = json.loads((folder / "config.json").read_text())
    assert cfg["architectures"] == ["Sa2VAChatModelQwen"] and cfg["model_type"] == "sa2va_chat"
    assert cfg["text_config"]["model_type"] == "qwen3_vl_text" and cfg["text_config"]["vocab_size"] == 415
    assert cfg["template"] == "qwen_chat" and cfg["vision_config"]["deepstack_visual_indexes"] == [1, 2, 3]
    with safe_open(str(folder / "model.safetensors"), framework="pt") as fh:
        names = set(fh.keys())
    assert {n.split(".")[0] for n in names} == {"model", "grounding_encoder", "text_hidden_fcs"}
    assert {"model.model.visual.deepstack_merger_list.2.linear_fc2.weight",
            "model.model.visual.pos_embed.weight", "model.lm_head.weight",
            "model.model.language_model.layers.0.self_attn.q_norm.weight",
            "text_hidden_fcs.2.bias", "grounding_encoder.sam2_model.maskmem_tpos_enc"} <= names
    assert family_of(str(folder)) == "sa2va"
    parts = load_sa2va(str(folder))
    qwen, fcs, sam2, _ = build_sa2va("qwen3-vl-tiny", seed=4)
    for mine, theirs in ((parts.qwen, qwen), (parts.fcs, fcs), (parts.sam2.model, sam2.model)):
        a, b = mine.state_dict(), theirs.state_dict()
        assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert type(parts.processor).__name__ == "Qwen3VLProcessor"
    assert parts.seg_token_id == 410 == parts.processor.tokenizer.convert_tokens_to_ids("[SEG]")
    assert parts.processor.tokenizer.convert_tokens_to_ids("</think>") == 384 + 25
    assert isinstance(load_pipeline(str(folder)), Sa2VAQwen3Pipeline)


def test_a_released_folder_is_recognised_by_its_config(qwen3_tiny):
    """``config.json`` alone picks the backbone: ``text_config.model_type`` ``qwen3_vl_text`` (the official
    ``Sa2VAChatConfigQwen(Qwen3VLConfig)``), else Qwen2.5-VL (nested or flat); the full-size preset's config
    (on the meta device) is the released one's."""
    from litelvlm.sa2va.checkpoint import build_sa2va, sa2va_config
    from litelvlm.sa2va.config import get_preset
    from litelvlm.sa2va.qwen3_checkpoint import backbone_of, kind_of_config

    qwen, *_ = build_sa2va("qwen3-vl-4b", device="meta")
    cfg = sa2va_config(get_preset("qwen3-vl-4b"), qwen)
    assert (cfg["text_config"]["hidden_size"], cfg["text_config"]["num_hidden_layers"],
            cfg["vision_config"]["depth"], cfg["tie_word_embeddings"]) == (2560, 36, 24, True)
    assert kind_of_config(cfg).backbone == "qwen3-vl"
    assert kind_of_config({**cfg, "text_config": {"model_type": "qwen2_5_vl_text"}}).backbone == "qwen2.5-vl"
    assert kind_of_config({"architectures": ["Sa2VAChatModelQwen"]}).backbone == "qwen2.5-vl"   # flat
    assert backbone_of(str(qwen3_tiny.folder)) == backbone_of(MODEL) == "qwen3-vl"
    assert backbone_of("sa2va-tiny-random:0") == "qwen2.5-vl"


def test_the_prompt_is_qwen3_vls_chat_and_the_resize_its_factor(qwen3_tiny):
    """No default system turn (Qwen2.5-VL's template adds one), the image before the question; the
    processor's second resize at Qwen3-VL's factor 32 (patch 16 merged 2 x 2)."""
    pipe = qwen3_tiny.pipe
    prep = pipe.prepare(noise_image(61, 97, seed=2), ["the cat"])
    pads = "<|image_pad|>" * pipe.num_visual(prep)
    text = pipe.processor.tokenizer.decode(prep.input_ids).replace(pads, "@")
    assert text == ("<|im_start|>user\n<|vision_start|>@<|vision_end|>\n Please segment the cat in this "
                    "image.<|im_end|>\n<|im_start|>assistant\nIt is [SEG].")
    assert pipe.factor == 32 and all(v % 32 == 0 for v in prep.llm_images[0].size)
    assert prep.deepstack.shape == (3, pipe.num_visual(prep), pipe.hidden_size)


def test_describe_labels_the_adaptations_and_refusals_say_why(qwen3_tiny):
    from litelvlm.methods import available_methods

    pipe = qwen3_tiny.pipe
    got = pipe.describe()
    assert got["backbone"] == "Qwen3-VL" and "this project's adaptation" in got["deepstack"]
    assert "Qwen3-VL grid" in got["pruning"] and "this project's adaptation" in got["pruning"]
    assert "no window attention" in pipe.method_error("vscan")
    assert "vision-tower stage" in pipe.method_error("flowcut")
    assert pipe.method_error("vitcop").startswith("vitcop reads CLIP's features or attention")
    refused = {m for m in available_methods() if pipe.method_error(m) is not None}
    assert refused == {"vscan", "flowcut", "vitcop", "ipcv", "ipcv+fastv", "ipcv+dart"}


def test_fastv_reads_the_q_k_normed_attention(qwen3_tiny):
    """The attention rows FastV ranks by are Qwen3's own: ``q_norm`` / ``k_norm`` per head before RoPE (the
    eager ``Qwen3VLTextAttention`` weights of the same layer)."""
    pipe = qwen3_tiny.pipe
    ctx = pipe.context(pipe.prepare(noise_image(50, 70, seed=1), ["the cat"]))
    layer = pipe.language_model.layers[1]
    hidden = ctx.hidden_before(1)
    pe = pipe.language_model.rotary_emb(hidden, position_ids=ctx.position_ids)
    from litelvlm.llm.context import causal_mask

    saved = layer.self_attn.config._attn_implementation
    layer.self_attn.config._attn_implementation = "eager"
    try:
        with torch.no_grad():
            mask = causal_mask(pipe.language_model, hidden, ctx.position_ids)
            _, weights = layer.self_attn(layer.input_layernorm(hidden), position_embeddings=pe,
                                         attention_mask=mask)
    finally:
        layer.self_attn.config._attn_implementation = saved
    torch.testing.assert_close(ctx.attention_rows(1, "last")[:, 0], weights[0, :, -1], atol=1e-6, rtol=1e-5)


def test_eval_grounding_runs(coco128, tmp_path):
    out = tmp_path / "g"
    assert main(["eval-grounding", "--refer-dir", str(coco128), "--out", str(out), "--model", MODEL,
                 "--image-ids", "34", "--methods", "none,fastv", "--budgets", "8"]) == 0
    summary = pd.read_csv(out / "summary.csv")
    assert len(summary) == 2 and summary["ciou"].gt(0).all()


@pytest.mark.slow
def test_validate_runs(coco128, tmp_path):
    assert main(["validate", "--model", MODEL, "--refer-dir", str(coco128), "--out", str(tmp_path / "v"),
                 "--repeats", "1", "--threads", "1", "--methods", "none,fastv,divprune",
                 "--budgets", "8,4"]) == 0


@pytest.mark.slow
def test_eval_video_runs(tmp_path):
    out = tmp_path / "video"
    assert main(["eval-video", "--out", str(out), "--model", MODEL, "--anno-sets", "0",
                 "--synthetic-videos", "1", "--synthetic-frames", "6", "--synthetic-seed", "11",
                 "--methods", "fastv,litelvlm", "--budgets", "196"]) == 0
    s = pd.read_csv(out / "summary.csv")
    assert list(s.method) == ["none", "fastv", "litelvlm"] and s["J&F"].between(0, 1).all()
