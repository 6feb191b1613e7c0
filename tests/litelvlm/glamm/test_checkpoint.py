"""The GLaMM-RefSeg checkpoint layout: round trip (.bin shards, safetensors) and clear errors."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import torch
from PIL import Image

from litelvlm.errors import LiteLVLMError
from litelvlm.glamm import GlammPipeline, build_glamm, load_glamm_checkpoint, save_glamm_checkpoint
from litelvlm.glamm.checkpoint import read_state_dict
from litelvlm.glamm.checkpoint_writer import glamm_state_dict
from litelvlm.glamm.tokenizer import build_tiny_tokenizer

#: Keys as the released checkpoint names them (segment_anything / LLaVA / GLaMM module names).
GLAMM_PREFIXES = ("model.embed_tokens.", "model.layers.", "model.norm.", "lm_head.", "model.mm_projector.0.",
                  "model.mm_projector.2.", "model.grounding_encoder.image_encoder.",
                  "model.grounding_encoder.prompt_encoder.", "model.grounding_encoder.mask_decoder.",
                  "model.text_hidden_fcs.0.0.", "model.text_hidden_fcs.0.2.")
SAMPLE_KEYS = ("model.embed_tokens.weight", "lm_head.weight", "model.norm.weight",
               "model.layers.0.self_attn.q_proj.weight", "model.layers.3.mlp.down_proj.weight",
               "model.mm_projector.0.weight", "model.mm_projector.2.bias",
               "model.text_hidden_fcs.0.0.weight", "model.text_hidden_fcs.0.2.bias",
               "model.grounding_encoder.image_encoder.patch_embed.proj.weight",
               "model.grounding_encoder.image_encoder.pos_embed",
               "model.grounding_encoder.image_encoder.blocks.0.norm1.weight",
               "model.grounding_encoder.image_encoder.blocks.1.attn.qkv.weight",
               "model.grounding_encoder.image_encoder.blocks.1.attn.rel_pos_h",
               "model.grounding_encoder.image_encoder.blocks.0.mlp.lin1.weight",
               "model.grounding_encoder.image_encoder.neck.0.weight",
               "model.grounding_encoder.image_encoder.neck.3.bias",
               "model.grounding_encoder.prompt_encoder.pe_layer.positional_encoding_gaussian_matrix",
               "model.grounding_encoder.prompt_encoder.point_embeddings.0.weight",
               "model.grounding_encoder.prompt_encoder.not_a_point_embed.weight",
               "model.grounding_encoder.prompt_encoder.no_mask_embed.weight",
               "model.grounding_encoder.prompt_encoder.mask_downscaling.6.weight",
               "model.grounding_encoder.mask_decoder.transformer.layers.0.self_attn.q_proj.weight",
               "model.grounding_encoder.mask_decoder.transformer.layers.1.norm4.weight",
               "model.grounding_encoder.mask_decoder.transformer.final_attn_token_to_image.out_proj.bias",
               "model.grounding_encoder.mask_decoder.transformer.norm_final_attn.weight",
               "model.grounding_encoder.mask_decoder.iou_token.weight",
               "model.grounding_encoder.mask_decoder.mask_tokens.weight",
               "model.grounding_encoder.mask_decoder.output_upscaling.0.weight",
               "model.grounding_encoder.mask_decoder.output_upscaling.1.weight",
               "model.grounding_encoder.mask_decoder.output_hypernetworks_mlps.0.layers.2.weight",
               "model.grounding_encoder.mask_decoder.iou_prediction_head.layers.0.weight")


@pytest.fixture(scope="module")
def native():
    """A tiny random GLaMM built natively, with its tokenizer."""
    tok = build_tiny_tokenizer()
    return build_glamm("tiny", seed=5, vocab_size=len(tok)), tok


@pytest.fixture(scope="module")
def ckpt(native, tmp_path_factory):
    model, tok = native
    return save_glamm_checkpoint(model, tok, tmp_path_factory.mktemp("glamm_bin"), shards=3, fmt="bin")


@pytest.fixture(scope="module")
def clip(tiny336_clip):
    return tiny336_clip


def _image() -> Image.Image:
    return Image.fromarray(np.random.default_rng(1).integers(0, 255, (90, 130, 3), dtype=np.uint8))


def test_written_layout_is_glamm_refseg(native, ckpt):
    model, _ = native
    index = json.loads((ckpt / "pytorch_model.bin.index.json").read_text())
    files = sorted(set(index["weight_map"].values()))
    assert files == [f"pytorch_model-0000{i}-of-00003.bin" for i in (1, 2, 3)]
    sd = read_state_dict(ckpt)
    assert set(sd) == set(index["weight_map"])
    assert all(k.startswith(GLAMM_PREFIXES) for k in sd), [k for k in sd if not k.startswith(GLAMM_PREFIXES)]
    assert not [k for k in sd if "vision_tower" in k or "clip" in k.lower()]
    assert set(SAMPLE_KEYS) <= set(sd), sorted(set(SAMPLE_KEYS) - set(sd))
    h = model.arch.llm_hidden
    assert sd["model.text_hidden_fcs.0.0.weight"].shape == (h, h)
    assert sd["model.text_hidden_fcs.0.2.weight"].shape == (model.arch.prompt_dim, h)
    assert sd["model.mm_projector.0.weight"].shape == (h, model.arch.clip_arch.vision_width)


@pytest.mark.parametrize("fmt,shards", [("bin", 3), ("safetensors", 1), ("safetensors", 2)])
def test_round_trip_identical_masks(native, clip, tmp_path, fmt, shards, ckpt):
    model, tok = native
    path = ckpt if fmt == "bin" else save_glamm_checkpoint(model, tok, tmp_path / "ck", shards=shards,
                                                           fmt=fmt)
    loaded, tok2 = load_glamm_checkpoint(path)
    want = {k: v for k, v in model.state_dict().items() if not k.startswith("llava.model.vision_tower.")}
    got = loaded.state_dict()
    assert all(torch.equal(got[k], v) for k, v in want.items())
    assert tok2.get_vocab() == tok.get_vocab()
    image, sents = _image(), ["the dog on the left", "red car"]
    a = GlammPipeline(model, tok, clip)
    b = GlammPipeline(loaded, tok2, clip)
    pa, pb = a.prepare(image, sents), b.prepare(image, sents)
    for method, budget in [("none", None), ("litelvlm", 32), ("fastv", 16)]:
        oa, ob = a.ground(pa, method, budget), b.ground(pb, method, budget)
        assert torch.equal(oa.mask_logits, ob.mask_logits)
        assert torch.equal(oa.masks, ob.masks)


def test_stale_rotary_keys_dropped(ckpt, tmp_path):
    d = shutil.copytree(ckpt, tmp_path / "ck")
    name = "pytorch_model-00001-of-00003.bin"
    sd = torch.load(d / name, weights_only=True)
    sd["model.layers.0.self_attn.rotary_emb.inv_freq"] = torch.ones(8)
    sd["model.grounding_encoder.pixel_mean"] = torch.ones(3, 1, 1)
    torch.save(sd, d / name)
    index = json.loads((d / "pytorch_model.bin.index.json").read_text())
    index["weight_map"]["model.layers.0.self_attn.rotary_emb.inv_freq"] = name
    (d / "pytorch_model.bin.index.json").write_text(json.dumps(index))
    model, _ = load_glamm_checkpoint(d)
    ref, _ = load_glamm_checkpoint(ckpt)
    assert all(torch.equal(model.state_dict()[k], v) for k, v in ref.state_dict().items()
               if not k.startswith("llava.model.vision_tower."))


def _edit(ckpt, tmp_path, fn) -> str:
    """A single-file copy of the checkpoint with its tensors edited by ``fn``."""
    d = tmp_path / "edited"
    d.mkdir()
    for f in ckpt.iterdir():
        if not f.name.startswith("pytorch_model"):
            shutil.copy(f, d / f.name)
    sd = read_state_dict(ckpt)
    fn(sd)
    torch.save(sd, d / "pytorch_model.bin")
    return d


def test_missing_key_named(ckpt, tmp_path):
    d = _edit(ckpt, tmp_path, lambda sd: sd.pop("model.grounding_encoder.mask_decoder.iou_token.weight"))
    with pytest.raises(LiteLVLMError,
                       match=r"missing key\(s\): model\.grounding_encoder\.mask_decoder\.iou_token"):
        load_glamm_checkpoint(d)


def test_unexpected_key_named(ckpt, tmp_path):
    d = _edit(ckpt, tmp_path, lambda sd: sd.update({"model.vision_tower.foo.weight": torch.zeros(1)}))
    with pytest.raises(LiteLVLMError, match=r"unexpected key\(s\).*model\.vision_tower\.foo\.weight"):
        load_glamm_checkpoint(d)


def test_wrong_shape_named(ckpt, tmp_path):
    def shrink(sd):
        sd["model.mm_projector.2.weight"] = sd["model.mm_projector.2.weight"][:, :-1].clone()

    d = _edit(ckpt, tmp_path, shrink)
    with pytest.raises(LiteLVLMError, match=r"model\.mm_projector\.2\.weight .*expected"):
        load_glamm_checkpoint(d)


def test_missing_files_named(ckpt, tmp_path):
    with pytest.raises(LiteLVLMError, match="does not exist"):
        load_glamm_checkpoint(tmp_path / "nowhere")
    d = shutil.copytree(ckpt, tmp_path / "no_shard")
    (d / "pytorch_model-00002-of-00003.bin").unlink()
    with pytest.raises(LiteLVLMError, match="pytorch_model-00002-of-00003.bin"):
        load_glamm_checkpoint(d)
    d = shutil.copytree(ckpt, tmp_path / "no_config")
    (d / "config.json").unlink()
    with pytest.raises(LiteLVLMError, match="config.json"):
        load_glamm_checkpoint(d)
    d = shutil.copytree(ckpt, tmp_path / "no_weights")
    for f in d.glob("pytorch_model*"):
        f.unlink()
    with pytest.raises(LiteLVLMError, match="no_weights': the folder holds no weights"):
        load_glamm_checkpoint(d)
    d = shutil.copytree(ckpt, tmp_path / "corrupt")
    (d / "pytorch_model-00001-of-00003.bin").write_bytes(b"not a checkpoint")
    with pytest.raises(LiteLVLMError, match="pytorch_model-00001-of-00003.bin"):
        load_glamm_checkpoint(d)


def test_tokenizer_without_seg(native, ckpt, tmp_path):
    """A plain Llama-style tokenizer (GLaMM's added tokens removed) is an error naming the folder."""
    from tokenizers import Tokenizer
    from transformers import PreTrainedTokenizerFast

    d = shutil.copytree(ckpt, tmp_path / "no_seg")
    raw = json.loads(native[1].backend_tokenizer.to_str())
    raw["added_tokens"] = [t for t in raw["added_tokens"] if t["content"] in ("<unk>", "<s>", "</s>")]
    plain = PreTrainedTokenizerFast(tokenizer_object=Tokenizer.from_str(json.dumps(raw)), bos_token="<s>",
                                    eos_token="</s>", unk_token="<unk>")
    assert "[SEG]" not in plain.get_vocab()
    for f in d.glob("tokenizer*"):
        f.unlink()
    (d / "special_tokens_map.json").unlink(missing_ok=True)
    plain.save_pretrained(str(d))
    with pytest.raises(LiteLVLMError, match=r"no_seg has no \[SEG\] token"):
        load_glamm_checkpoint(d)


def test_glamm_state_dict_has_no_clip(native):
    model, _ = native
    sd = glamm_state_dict(model)
    assert not any("vision_tower" in k for k in sd)
    assert "model.grounding_encoder.prompt_encoder.pe_layer.positional_encoding_gaussian_matrix" in sd
