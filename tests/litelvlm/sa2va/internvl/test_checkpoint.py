"""Sa2VA-InternVL3's random checkpoints in the released layout (``Sa2VAChatModel``'s config.json and tensor
names), loaded back with every tensor checked; the released sizes on the meta device."""

from __future__ import annotations

import json

import pytest
import torch
from safetensors import safe_open
from safetensors.torch import load_file, save_file

from litelvlm.errors import LiteLVLMError


@pytest.fixture(scope="module")
def written(internvl_tiny):
    """The tiny preset's folder (seed 0), written by :func:`~litelvlm.sa2va.internvl.checkpoint.
    save_random_internvl` into the cache."""
    return internvl_tiny.folder


def test_random_weights_round_trip_in_the_released_layout(written):
    """The folder holds the released names and config.json; loaded back (by the family's own model-string
    resolution: a folder declaring ``Sa2VAChatModel``), every tensor is the built one."""
    from litelvlm.registry.families import family_of
    from litelvlm.sa2va.internvl.checkpoint import build_internvl, internvl_tensors
    from litelvlm.sa2va.internvl.loading import load_internvl
    from litelvlm.sa2va.internvl.vision import to_released

    cfg = json.loads((written / "config.json").read_text())
    assert cfg["architectures"] == ["Sa2VAChatModel"] and cfg["model_type"] == "sa2va_chat"
    assert cfg["template"] == "qwen_chat" and cfg["llm_config"]["vocab_size"] == 420
    assert cfg["vision_config"]["architectures"] == ["InternVisionModel"] and cfg["ps_version"] == "v2"
    assert cfg["litelvlm_random"]["preset"] == "internvl3-tiny" and family_of(str(written)) == "sa2va"
    with safe_open(str(written / "model.safetensors"), framework="pt") as fh:
        names = set(fh.keys())
    assert {n.split(".")[0] for n in names} == {"vision_model", "mlp1", "language_model", "grounding_encoder",
                                                "text_hidden_fcs"}
    assert {"vision_model.encoder.layers.1.attn.qkv.weight", "vision_model.embeddings.class_embedding",
            "mlp1.3.bias", "language_model.lm_head.weight", "language_model.model.embed_tokens.weight",
            "text_hidden_fcs.2.weight", "grounding_encoder.sam2_model.memory_encoder.fuser.layers.0.g_weight",
            } <= names
    parts = load_internvl(str(written))
    built = build_internvl("internvl3-tiny", seed=0)[0]
    mine = to_released(parts.model.state_dict())
    assert all(torch.equal(v, mine[k]) for k, v in to_released(built.state_dict()).items())
    assert set(internvl_tensors(parts.model, parts.fcs, parts.sam2, parts.sam2.tracking)) == names
    tok = parts.tokenizer
    assert tok.convert_tokens_to_ids(["<img>", "</img>", "<IMG_CONTEXT>", "[SEG]", "</vp>"]) == [
        406, 407, 408, 415, 419]


@pytest.mark.parametrize("change", ["missing", "unknown", "shape"])
def test_a_folder_off_the_layout_is_named(written, tmp_path, change):
    import shutil

    from litelvlm.sa2va.internvl.loading import load_internvl

    folder = tmp_path / "bad"
    shutil.copytree(written, folder)
    sd = load_file(str(folder / "model.safetensors"))
    name = "vision_model.encoder.layers.0.attn.qkv.bias"
    if change == "missing":
        del sd[name]
    elif change == "unknown":
        sd["vision_model.extra.weight"] = torch.zeros(1)
    else:
        sd[name] = torch.zeros(5)
    save_file(sd, str(folder / "model.safetensors"))
    expected = {"missing": f"missing tensor.*{name}", "unknown": "unknown tensor.*vision_model.extra.weight",
                "shape": f"{name} has shape \\(5,\\)"}[change]
    with pytest.raises(LiteLVLMError, match=expected):
        load_internvl(str(folder))


def test_a_qwen_backbones_folder_is_no_internvl_folder(written, tmp_path):
    """A Sa2VA folder of a Qwen-VL backbone (``Sa2VAChatModelQwen``) is refused by the InternVL3 loader, by
    name."""
    import shutil

    from litelvlm.sa2va.internvl.loading import internvl_folder

    folder = tmp_path / "qwen"
    shutil.copytree(written, folder)
    cfg = json.loads((folder / "config.json").read_text())
    cfg.update(architectures=["Sa2VAChatModelQwen"])
    del cfg["llm_config"], cfg["litelvlm_random"]
    (folder / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(LiteLVLMError, match="declares no Sa2VAChatModel with an InternVL"):
        internvl_folder(str(folder))


def test_the_names_map_both_ways(internvl_tiny):
    """transformers' names -> the released ones -> transformers' again: every tensor back at its name."""
    from litelvlm.sa2va.internvl.vision import to_released, to_transformers

    sd = internvl_tiny.pipe.model.state_dict()
    there = to_released(sd)
    assert not any(k.startswith("model.") for k in there) and len(there) < len(sd)   # qkv fused
    back = to_transformers(there)
    assert set(back) == set(sd) and all(torch.equal(back[k], sd[k]) for k in sd)


@pytest.mark.slow
def test_the_released_sizes():
    """The 2B preset on the meta device: InternViT-300M (1024 wide, 24 layers), Qwen2.5-1.5B (1536 wide, 28
    layers, 151679 rows), ``mlp1`` over the 4096 shuffled channels, SAM 2 Hiera-L's 256-wide prompt; its
    stand-in tokenizer puts InternVL's and Sa2VA's tokens at the released ids."""
    from litelvlm.sa2va.internvl.checkpoint import build_internvl, internvl_tensors, random_tokenizer

    model, fcs, sam2, tracking = build_internvl("internvl3-2b", device="meta")
    sd = internvl_tensors(model, fcs, sam2, tracking)
    assert sd["vision_model.encoder.layers.23.attn.qkv.weight"].shape == (3072, 1024)
    assert sd["mlp1.1.weight"].shape == (1536, 4096) and sd["text_hidden_fcs.2.weight"].shape == (256, 1536)
    assert sd["language_model.lm_head.weight"].shape == (151679, 1536)
    assert "language_model.model.layers.27.mlp.up_proj.weight" in sd
    tok = random_tokenizer("internvl3-2b")
    ids = tok.convert_tokens_to_ids(["<img>", "<IMG_CONTEXT>", "</box>", "[SEG]"])
    assert ids == [151665, 151667, 151673, 151674]
