"""A written Qwen folder's ``tokenizer_config.json`` reads under the official pins and under transformers 5:
added special tokens are listed as ``additional_special_tokens`` (what transformers 4.x writes and reads;
4.53.3, UniPixel's pin, raises AttributeError on transformers 5's ``extra_special_tokens`` list: found by
``tests/litelvlm/unipixel/test_pipeline_under_the_official_pin.py``), which transformers 5 reads as the same
special tokens."""

from __future__ import annotations

import json

from transformers import AutoTokenizer

from litelvlm.qwen.checkpoint import pinned_tokenizer_config
from litelvlm.unipixel.checkpoint import random_unipixel_dir
from litelvlm.unipixel.config import EXTRA_TOKENS


def test_the_unipixel_folder_lists_its_tokens_as_the_pins_read_them(tmp_path):
    folder = random_unipixel_dir("tiny", 0)
    cfg = json.loads((folder / "tokenizer_config.json").read_text())
    assert cfg["additional_special_tokens"] == list(EXTRA_TOKENS) and "extra_special_tokens" not in cfg
    tok = AutoTokenizer.from_pretrained(str(folder))
    assert tok.extra_special_tokens == list(EXTRA_TOKENS)
    # transformers 5's own form, saved again, is the same tokenizer as the folder's
    tok.save_pretrained(str(tmp_path))
    assert json.loads((tmp_path / "tokenizer_config.json").read_text())["extra_special_tokens"] == list(
        EXTRA_TOKENS)
    again = AutoTokenizer.from_pretrained(str(tmp_path))
    text = "<|im_start|>user\n<|vision_start|><|video_pad|><|vision_end|>segment <|seg|> <|ref|><|mem|>."
    assert again(text)["input_ids"] == tok(text)["input_ids"]
    assert again.all_special_tokens == tok.all_special_tokens and again.get_vocab() == tok.get_vocab()


def test_the_rewrite_leaves_other_configs_alone(tmp_path):
    path = tmp_path / "tokenizer_config.json"
    for cfg in ({"eos_token": "<|im_end|>"}, {"extra_special_tokens": {"image_token": "<|image_pad|>"}}):
        path.write_text(json.dumps(cfg))
        pinned_tokenizer_config(tmp_path)
        assert json.loads(path.read_text()) == cfg
    path.write_text(json.dumps({"eos_token": "e", "extra_special_tokens": ["<a>"]}))
    pinned_tokenizer_config(tmp_path)
    assert json.loads(path.read_text()) == {"eos_token": "e", "additional_special_tokens": ["<a>"]}
