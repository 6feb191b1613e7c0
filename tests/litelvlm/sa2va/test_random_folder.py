"""litelvlm.sa2va.random_folder: what a random Sa2VA folder holds the same way on every backbone."""

from __future__ import annotations

import pytest

from litelvlm.errors import LiteLVLMError


def test_the_random_record_keeps_its_key_order():
    """The keys load_grounding reads back (sam2, image_size) sit after the seed and device, before the
    backbone's own and the fill, on both backbones."""
    from litelvlm.sa2va.checkpoint import _random_config, build_sa2va
    from litelvlm.sa2va.config import get_preset
    from litelvlm.sa2va.internvl.checkpoint import random_config
    from litelvlm.sa2va.internvl.config import get_preset as internvl_preset
    from litelvlm.sa2va.random_folder import random_note

    note = random_note({"a": 1}, "tiny", 3, "fast", "cpu", "tiny", 128, max_tiles=12)
    assert note == {"a": 1, "litelvlm_random": {"preset": "tiny", "seed": 3, "built_on": "cpu",
                                                "sam2": "tiny", "image_size": 128, "max_tiles": 12,
                                                "fill": "fast"}}
    iv = random_config(internvl_preset("internvl3-2b"), 0, "fast", "cpu")["litelvlm_random"]
    assert list(iv) == ["preset", "seed", "built_on", "sam2", "image_size", "max_tiles", "fill"]
    qwen = build_sa2va("tiny", device="meta")[0]
    sa = _random_config(get_preset("tiny"), qwen, 0, "cpu", "init")["litelvlm_random"]
    assert list(sa) == ["preset", "seed", "built_on", "sam2", "image_size", "min_pixels", "max_pixels"]


def test_the_five_tokens_are_checked_at_their_ids():
    from litelvlm.sa2va.config import EXTRA_TOKENS
    from litelvlm.sa2va.internvl.checkpoint import random_tokenizer
    from litelvlm.sa2va.internvl.config import get_preset
    from litelvlm.sa2va.qwen3_checkpoint import qwen3_tokenizer
    from litelvlm.sa2va.random_folder import add_extra_tokens

    p = get_preset("internvl3-tiny")
    tok = random_tokenizer(p)
    assert len(tok) == p.vocab_size and tok.chat_template is None
    assert [tok.convert_tokens_to_ids(t) for t in EXTRA_TOKENS] == [p.token_id(t) for t in EXTRA_TOKENS]
    with pytest.raises(LiteLVLMError, match=r"^Qwen3-VL tiny: the tokenizer gives \{'\[SEG\]': 410, .*"
                                            r"\(415 tokens\), expected \{\} \(7\)$"):
        add_extra_tokens(qwen3_tokenizer("tiny"), {}, 7, "Qwen3-VL tiny")
