"""litelvlm.sa2va.qwen3_checkpoint: a random Sa2VA-Qwen3-VL folder's ``config.json`` reads under the official
pin (bytedance/Sa2VA @9832e1a ``pyproject.toml``: transformers 4.57.0) and under transformers 5.

transformers 4.57's ``Qwen3VLTextConfig`` takes ``rope_theta`` and ``rope_scaling``
(``configuration_qwen3_vl.py`` L182-206) and its ``Qwen3VLTextRotaryEmbedding`` reads
``config.rope_scaling["rope_type"]`` and ``["mrope_section"]`` (``modeling_qwen3_vl.py`` L281-296; with no
``rope_scaling`` the second raises AttributeError on None); transformers 5 writes ``rope_parameters``
(``rope_theta`` inside). The folder holds both, with the same content."""

from __future__ import annotations

import json

import torch


def test_the_config_holds_the_rope_keys_of_both_transformers(qwen3_tiny):
    from transformers import Qwen3VLConfig

    cfg = json.loads((qwen3_tiny.folder / "config.json").read_text())
    text = cfg["text_config"]
    params = text["rope_parameters"]
    assert text["rope_scaling"] == {k: v for k, v in params.items() if k != "rope_theta"}
    assert {**text["rope_scaling"], "rope_theta": text["rope_theta"]} == params
    rope = text["rope_scaling"]
    assert (rope["rope_type"], rope["mrope_section"]) == ("default", [2, 3, 3])
    # transformers 5 reads it as it reads its own form
    plain = json.loads(json.dumps(cfg))
    for key in ("rope_scaling", "rope_theta"):
        del plain["text_config"][key]
    assert Qwen3VLConfig.from_dict(cfg).to_dict() == Qwen3VLConfig.from_dict(plain).to_dict()


def test_transformers_5_loads_the_same_rotary_embedding(qwen3_tiny):
    """The loaded model's rotary embedding is the one of the config without the 4.57 keys (the weights round
    trip: ``test_qwen3_pipeline.py``)."""
    from transformers import Qwen3VLConfig
    from transformers.models.qwen3_vl.modeling_qwen3_vl import Qwen3VLTextRotaryEmbedding

    cfg = json.loads((qwen3_tiny.folder / "config.json").read_text())
    plain = json.loads(json.dumps(cfg))
    for key in ("rope_scaling", "rope_theta"):
        del plain["text_config"][key]
    mine, theirs = (Qwen3VLTextRotaryEmbedding(Qwen3VLConfig.from_dict(c).text_config) for c in (cfg, plain))
    pos = torch.arange(12).view(3, 1, 4)
    x = torch.zeros(1, 4, 16)
    assert mine.mrope_section == theirs.mrope_section == [2, 3, 3]
    assert all(torch.equal(a, b) for a, b in zip(mine(x, pos), theirs(x, pos), strict=True))
    lm = qwen3_tiny.parts.qwen.model.language_model.rotary_emb
    assert torch.equal(lm.inv_freq, mine.inv_freq)


def test_the_qwen25_folder_holds_them_too():
    """Sa2VA-Qwen2.5-VL's folder as well: transformers 4.57's Qwen2.5-VL attention reads
    ``config.rope_scaling["mrope_section"]`` (``modeling_qwen2_5_vl.py`` L655 there: a TypeError on None,
    found by ``test_pipeline_under_the_official_pin.py`` under the pin); transformers 5 reads the config as
    its own form."""
    from transformers import Qwen2_5_VLConfig

    from litelvlm.sa2va.checkpoint import random_sa2va_dir

    cfg = json.loads((random_sa2va_dir("tiny", 0) / "config.json").read_text())
    text = cfg["text_config"]
    assert text["rope_scaling"] == {k: v for k, v in text["rope_parameters"].items() if k != "rope_theta"}
    assert text["rope_scaling"]["mrope_section"] == [2, 3, 3] and text["rope_theta"] == 1e6
    plain = json.loads(json.dumps(cfg))
    for key in ("rope_scaling", "rope_theta"):
        del plain["text_config"][key]
    assert Qwen2_5_VLConfig.from_dict(cfg).to_dict() == Qwen2_5_VLConfig.from_dict(plain).to_dict()
