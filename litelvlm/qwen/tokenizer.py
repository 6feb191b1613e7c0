"""A small offline stand-in for Qwen2.5's tokenizer, with Qwen's special and chat tokens at a preset's ids.

No Qwen vocabulary can be had offline, so random checkpoints get this tokenizer; a real checkpoint
folder brings its own (``tokenizer.json``, ``vocab.json``, ``merges.txt``), which is what a study of a
real model uses. The stand-in is built like Qwen's: a byte-level BPE (``Qwen2Tokenizer``: NFC, Qwen's
pre-tokenisation regex, byte-level alphabet) trained on a small English corpus to
:data:`TRAINED_VOCAB` tokens; when the preset's ``special_base`` is larger (151643 for the real sizes)
the regular vocabulary is padded with unreachable filler tokens (no merge produces them), so that
:data:`~litelvlm.qwen.config.SPECIAL_TOKENS` land exactly at the ids ``config.json`` declares
(``<|image_pad|>`` = 151655, ...). Its limits: it splits English into short pieces (most words into
several tokens), knows no other script beyond raw bytes, and its ids mean nothing to a real model.
The chat template is Qwen2.5-VL-Instruct's (``chat_template.json`` of the released folders). The models
built on Qwen's tokenizer (Qwen3-VL, Sa2VA-InternVL3) take the same stand-in with their further special
tokens after its 22 (:func:`stand_in_tokenizer`).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import replace

from tokenizers import AddedToken, Regex, Tokenizer, models, normalizers, pre_tokenizers, trainers
from transformers import Qwen2Tokenizer
from transformers.models.qwen2.tokenization_qwen2 import PRETOKENIZE_REGEX

from ..errors import LiteLVLMError
from .config import QWEN_SPECIAL_BASE, SPECIAL_TOKENS, QwenPreset, QwenTokenPreset, get_preset

#: Regular tokens of the trained byte-level BPE (256 bytes + merges).
TRAINED_VOCAB = 384
#: The chat template of Qwen2.5-VL-3B/7B-Instruct (``chat_template.json``, transcribed).
CHAT_TEMPLATE = (
    "{% set image_count = namespace(value=0) %}{% set video_count = namespace(value=0) %}"
    "{% for message in messages %}{% if loop.first and message['role'] != 'system' %}"
    "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n{% endif %}"
    "<|im_start|>{{ message['role'] }}\n{% if message['content'] is string %}{{ message['content'] "
    "}}<|im_end|>\n{% else %}{% for content in message['content'] %}"
    "{% if content['type'] == 'image' or 'image' in content or 'image_url' in content %}"
    "{% set image_count.value = image_count.value + 1 %}{% if add_vision_id %}Picture {{ image_count.value "
    "}}: {% endif %}<|vision_start|><|image_pad|><|vision_end|>"
    "{% elif content['type'] == 'video' or 'video' in content %}{% set video_count.value = video_count.value "
    "+ 1 %}{% if add_vision_id %}Video {{ video_count.value }}: {% endif "
    "%}<|vision_start|><|video_pad|><|vision_end|>{% elif 'text' in content %}{{ content['text'] }}{% endif "
    "%}{% endfor %}<|im_end|>\n{% endif %}{% endfor %}{% if add_generation_prompt "
    "%}<|im_start|>assistant\n{% endif %}")

_CORPUS = (
    "You are a helpful assistant. Please segment the object the sentence describes in this image and "
    "output its mask. Sure, it is here. What is in the picture? The person on the left, the man in the "
    "middle, the woman at the back, the boy and the girl, the child in front, the dog near the cat, the "
    "horse behind the car, the bus and the truck, a bike, a bowl, a cup on the table, the chair by the "
    "couch, the bed, a bird, the sheep and the cow, an elephant, a bear, a zebra, a giraffe with an "
    "umbrella, a bottle, a pizza, a cake, a banana, an apple, an orange, a sandwich, broccoli, a donut, a "
    "laptop, a phone, the tv, a book, a clock, a vase; white black red blue green yellow brown; small large "
    "big tall short; leftmost rightmost biggest smallest top bottom; one two three four five 0 1 2 3 4 5 6 7 "
    "8 9. ")


def _trained_bpe() -> tuple[dict[str, int], list[tuple[str, str]]]:
    """(vocab, merges) of a byte-level BPE with Qwen's pre-tokenisation, trained to :data:`TRAINED_VOCAB`."""
    tok = Tokenizer(models.BPE())
    tok.normalizer = normalizers.NFC()
    tok.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(PRETOKENIZE_REGEX), behavior="isolated"),
        pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)])
    trainer = trainers.BpeTrainer(vocab_size=TRAINED_VOCAB,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
                                  show_progress=False, special_tokens=[])
    tok.train_from_iterator([_CORPUS, _CORPUS.lower(), _CORPUS.upper()], trainer=trainer)

    model = json.loads(tok.to_str())["model"]
    merges = [tuple(m.split(" ", 1)) if isinstance(m, str) else tuple(m) for m in model["merges"]]
    return dict(model["vocab"]), merges


def build_qwen_tokenizer(preset: str | QwenPreset = "tiny"):
    """A ``Qwen2Tokenizer`` whose special tokens sit at ``preset``'s ids, with Qwen2.5-VL's chat template
    (a stand-in: a real checkpoint brings its own tokenizer)."""
    p = get_preset(preset)
    vocab, merges = _trained_bpe()
    if len(vocab) > p.special_base:
        raise ValueError(f"the trained vocabulary ({len(vocab)}) exceeds preset {p.name!r}'s special_base "
                         f"{p.special_base}")
    for i in range(len(vocab), p.special_base):  # unreachable fillers: no merge builds them
        vocab[f"<|litelvlm_filler_{i}|>"] = i
    tok = Qwen2Tokenizer(vocab=vocab, merges=merges, errors="replace", model_max_length=32768,
                         chat_template=CHAT_TEMPLATE)
    tok.add_tokens([AddedToken(t, special=True, normalized=False) for t in SPECIAL_TOKENS[1:]])
    # the Instruct releases' tokenizer_config.json: eos <|im_end|>, pad <|endoftext|>
    tok.eos_token = "<|im_end|>"
    wrong = {t: tok.convert_tokens_to_ids(t) for t in SPECIAL_TOKENS if tok.convert_tokens_to_ids(t)
             != p.token_id(t)}
    if wrong:
        raise ValueError(f"special tokens at the wrong ids for preset {p.name!r}: {wrong}")
    return tok


def stand_in_tokenizer(p: QwenTokenPreset, added: Sequence[str], chat_template: str | None):
    """A random folder's tokenizer for a preset on Qwen's tokenizer: :func:`build_qwen_tokenizer` at ``p``'s
    ``special_base``, then ``added`` (the preset's special tokens after Qwen2.5's 22) as special tokens,
    ``chat_template`` (None: none), and every special token checked at ``p``'s id."""
    base = get_preset("tiny" if p.special_base < QWEN_SPECIAL_BASE else "3b")
    tok = build_qwen_tokenizer(replace(base, special_base=p.special_base,
                                       vocab_size=max(base.vocab_size, p.vocab_size)))
    tok.add_tokens([AddedToken(t, special=True, normalized=False) for t in added])
    tok.chat_template = chat_template
    wrong = {t: tok.convert_tokens_to_ids(t) for t in (*SPECIAL_TOKENS, *added)
             if tok.convert_tokens_to_ids(t) != p.token_id(t)}
    if wrong:
        raise LiteLVLMError(f"{p.family} preset {p.name!r}: special tokens at the wrong ids: {wrong}")
    return tok
