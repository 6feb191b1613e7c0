"""litelvlm.qwen: Qwen2.5-VL presets, random checkpoints in the released layout loaded back, model strings."""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pytest
import torch
from PIL import Image

from litelvlm.errors import LiteLVLMError
from litelvlm.models.model_spec import RANDOM_CLIPS, RANDOM_QWENS, ModelSpec
from litelvlm.qwen.checkpoint import (
    build_qwen,
    load_qwen,
    qwen_folder,
    released_state_dict,
    save_random_qwen,
)
from litelvlm.qwen.config import PRESETS, SPECIAL_TOKENS, get_preset
from litelvlm.qwen.hf_config import qwen_config
from litelvlm.registry.families import card
from litelvlm.runs.io import shard_by_size

#: Parameters of the released checkpoints as loaded by transformers (the Hugging Face Hub lists them as
#: 3.75B and 8.29B; the 7B's safetensors index totals 16,584,333,312 bytes = 2 x 8,292,166,656 in bfloat16;
#: the 3B's ties lm_head to the embeddings, which count once).
RELEASED_PARAMETERS = {"3b": 3_754_622_976, "7b": 8_292_166_656}
#: Files of a released Qwen2.5-VL-*-Instruct folder besides the weights.
RELEASED_FILES = {"config.json", "generation_config.json", "preprocessor_config.json", "chat_template.json",
                  "tokenizer.json", "tokenizer_config.json", "vocab.json", "merges.txt"}


@pytest.fixture
def cache(fresh_cache):
    return fresh_cache


def _chat_inputs(processor, size=(56, 84)):
    rng = np.random.RandomState(0)
    image = Image.fromarray((rng.rand(*size, 3) * 255).astype("uint8"))
    messages = [
        {"role": "user", "content": [{"type": "image"}, {"type": "text", "text": "Segment the dog."}]}]
    text = processor.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    return processor(text=[text], images=[image], return_tensors="pt")


def _equal_state(a, b) -> None:
    sa, sb = a.state_dict(), b.state_dict()
    assert sorted(sa) == sorted(sb)
    bad = [k for k in sa if sa[k].dtype != sb[k].dtype or not torch.equal(sa[k], sb[k])]
    assert not bad, bad[:5]


def test_tiny_written_and_loaded_back_equal(cache):
    model, processor = load_qwen("qwen2.5-vl-tiny-random:3")
    folder = qwen_folder("qwen2.5-vl-tiny-random:3")
    assert folder.parent == cache / "random-models" and folder.name == "qwen2.5-vl-tiny-seed3"
    assert {p.name for p in folder.iterdir()} == RELEASED_FILES | {"model.safetensors", ".complete"}
    cfg = json.loads((folder / "config.json").read_text())
    assert cfg["litelvlm_random"]["seed"] == 3 and cfg["architectures"] == [
        "Qwen2_5_VLForConditionalGeneration"]
    ref = build_qwen("tiny", seed=3)
    _equal_state(ref, model)
    assert not torch.equal(ref.lm_head.weight, build_qwen("tiny", seed=4).lm_head.weight)
    inputs = _chat_inputs(processor)
    tiny = PRESETS["tiny"]
    n_image = int(inputs["image_grid_thw"].prod()) // tiny.spatial_merge_size ** 2
    # 56x84 px: 4x6 patches, 2x3 tokens
    assert int((inputs["input_ids"] == tiny.image_token_id).sum()) == n_image == 6
    ids = inputs["input_ids"][0].tolist()
    prompt = [tiny.token_id("<|im_start|>"), *processor.tokenizer("assistant\n")["input_ids"]]
    assert ids[-len(prompt):] == prompt and ids.count(tiny.token_id("<|vision_start|>")) == 1
    with torch.no_grad():
        assert torch.equal(ref(**inputs).logits, model(**inputs).logits)
    stamp = (folder / "model.safetensors").stat().st_mtime_ns
    load_qwen("qwen2.5-vl-tiny-random:3")  # the cached folder is read, not written again
    assert (folder / "model.safetensors").stat().st_mtime_ns == stamp


def test_tied_embeddings_are_written_once(tmp_path):
    """The 3B ties lm_head to the embeddings: the released files hold no lm_head.weight."""
    tied = replace(PRESETS["tiny"], name="tiny-tied", tie_word_embeddings=True)
    save_random_qwen(tmp_path, tied, seed=1)
    from safetensors import safe_open
    from transformers import Qwen2_5_VLForConditionalGeneration

    with safe_open(str(tmp_path / "model.safetensors"), framework="pt") as fh:
        keys = set(fh.keys())  # noqa: SIM118 (no __iter__)
    assert "lm_head.weight" not in keys and "model.embed_tokens.weight" in keys
    assert any(k.startswith("visual.blocks.") for k in keys) and not any(k.startswith("model.visual")
                                                                         for k in keys)
    loaded = Qwen2_5_VLForConditionalGeneration.from_pretrained(str(tmp_path))
    assert loaded.lm_head.weight.data_ptr() == loaded.model.language_model.embed_tokens.weight.data_ptr()
    _equal_state(build_qwen(tied, seed=1), loaded)


@pytest.mark.parametrize("name, files", [("3b", 2), ("7b", 5)])
def test_released_sizes_on_meta(name, files):
    """Parameter counts and the shard count of the released folders, without allocating a weight."""
    model = build_qwen(name, device="meta")
    assert sum(p.numel() for p in model.parameters()) == RELEASED_PARAMETERS[name]
    sd = released_state_dict(model)
    assert all(v.dtype == torch.bfloat16 for v in sd.values())
    assert len(
        shard_by_size({k: v.numel() * v.element_size() for k, v in sd.items()},
                      PRESETS[name].max_shard_bytes)) == files
    cfg = model.config
    assert (cfg.image_token_id, cfg.video_token_id, cfg.vision_start_token_id, cfg.vision_end_token_id) == (
        151655, 151656, 151652, 151653)
    assert cfg.text_config.rope_parameters["mrope_section"] == [16, 24, 24]
    assert cfg.text_config.rope_parameters["rope_theta"] == 1e6
    assert cfg.vision_config.fullatt_block_indexes == [7, 15, 23, 31] and cfg.vision_config.window_size == 112
    assert cfg.tie_word_embeddings is (name == "3b")


def test_scaled_preset_shards_and_full_tokenizer(tmp_path):
    """The 7B's layout at small widths: real vocabulary and ids, sharded safetensors with an index."""
    from transformers import AutoProcessor, Qwen2_5_VLForConditionalGeneration

    save_random_qwen(tmp_path, "scaled", seed=0)
    index = json.loads((tmp_path / "model.safetensors.index.json").read_text())
    shards = sorted(p.name for p in tmp_path.glob("model-*.safetensors"))
    assert len(shards) >= 3 and set(index["weight_map"].values()) == set(shards)
    assert shards[0] == f"model-00001-of-{len(shards):05d}.safetensors"
    ref = build_qwen("scaled", seed=0)
    sd = released_state_dict(ref)
    assert set(index["weight_map"]) == set(sd) and "lm_head.weight" in sd
    assert index["metadata"]["total_size"] == sum(v.numel() * v.element_size() for v in sd.values())
    loaded = Qwen2_5_VLForConditionalGeneration.from_pretrained(str(tmp_path), dtype=torch.bfloat16)
    _equal_state(ref, loaded)
    processor = AutoProcessor.from_pretrained(str(tmp_path))
    tok = processor.tokenizer
    assert len(tok) == 151665  # as Qwen2.5's: 151643 regular tokens, then the 22 special ones
    assert [tok.convert_tokens_to_ids(t) for t in SPECIAL_TOKENS] == list(range(151643, 151665))
    assert processor.image_token_id == loaded.config.image_token_id == 151655
    assert (processor.image_processor.size["shortest_edge"],
            processor.image_processor.size["longest_edge"]) == (
        3136, 12845056)
    assert json.loads((tmp_path / "generation_config.json").read_text())["eos_token_id"] == [151645, 151643]


def test_model_strings():
    assert {ModelSpec.parse(f"{name}:7").random_qwen for name in RANDOM_QWENS} == {"3b", "7b", "tiny"}
    spec = ModelSpec.parse("qwen2.5-vl-7b-random:12")
    assert (spec.random_qwen, spec.random_seed(), spec.is_random,
            spec.open_clip_style) == ("7b", 12, True, False)
    assert ModelSpec.parse("qwen2.5-vl-3b-random").random_seed() == 0
    assert ModelSpec.parse("qwen2.5-vl-tiny-random").is_small and not ModelSpec.parse(
        "qwen2.5-vl-3b-random").is_small
    assert ModelSpec.parse("tiny-random").random_qwen is None
    assert not set(RANDOM_QWENS) & (set(RANDOM_CLIPS) | set(card("glamm").presets))
    with pytest.raises(LiteLVLMError, match=r"model 'qwen2.5-vl-3b-random:x': the seed after ':' must be a "
                       r"whole"):
        load_qwen("qwen2.5-vl-3b-random:x")


def test_bad_folders_are_refused_by_name(tmp_path):
    with pytest.raises(LiteLVLMError, match=r"model '.*nowhere': no such folder, random preset or "
                       r"released checkpoint.*qwen2.5-vl-3b-random"):
        load_qwen(str(tmp_path / "nowhere"))
    (tmp_path / "config.json").write_text(json.dumps({"architectures": ["LlamaForCausalLM"]}))
    with pytest.raises(LiteLVLMError, match=r"config.json declares architectures \['LlamaForCausalLM'\]"):
        load_qwen(str(tmp_path))
    with pytest.raises(LiteLVLMError, match=r"unknown Qwen2.5-VL preset 'qwen2.5-vl-3b'; known: 3b, 7b, "
                       r"scaled, tiny"):
        get_preset("qwen2.5-vl-3b")


def test_tiny_preset_keeps_qwen_token_order():
    tiny, real = PRESETS["tiny"], PRESETS["7b"]
    for token in SPECIAL_TOKENS:
        assert tiny.token_id(token) - tiny.special_base == real.token_id(token) - real.special_base
    cfg = qwen_config("tiny")
    assert cfg.image_token_id == tiny.special_base + 12 and cfg.text_config.vocab_size == tiny.vocab_size
    with pytest.raises(LiteLVLMError, match="mrope_section"):
        replace(tiny, mrope_section=(4, 4, 4))
