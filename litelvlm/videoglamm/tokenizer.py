"""A small offline stand-in for Phi-3-mini's tokenizer, with Phi-3's special tokens and ``[SEG]`` at the real
ids.

No Phi-3 vocabulary can be had offline, so random VideoGLaMM checkpoints get this tokenizer; a real checkpoint
folder brings its own. Phi-3-mini-4k-instruct's tokenizer is Llama's 32000-piece SentencePiece (``<unk>`` 0,
``<s>`` 1, ``</s>`` 2) plus eleven added tokens at 32000-32010 (:data:`PHI3_SPECIAL`), and VideoGLaMM adds
``[SEG]`` after them (``chat.py`` L296-298: 32011). The stand-in is the byte-level BPE of
:mod:`litelvlm.qwen.tokenizer` after the three Llama tokens, padded with unreachable fillers up to the
preset's ``special_base``, then those tokens; it prepends ``<s>`` as the Llama tokenizer does
(``add_bos_token``). Its ids mean nothing to a real model.
"""

from __future__ import annotations

from tokenizers import AddedToken, Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, processors
from transformers import PreTrainedTokenizerFast
from transformers.models.qwen2.tokenization_qwen2 import PRETOKENIZE_REGEX

from ..qwen.tokenizer import _trained_bpe
from .config import VideoGLaMMPreset, get_preset

#: Phi-3-mini's added tokens, ids 32000-32010 in its ``tokenizer.json``.
PHI3_SPECIAL: tuple[str, ...] = ("<|endoftext|>", "<|assistant|>", "<|placeholder1|>", "<|placeholder2|>",
                                 "<|placeholder3|>", "<|placeholder4|>", "<|system|>", "<|end|>",
                                 "<|placeholder5|>", "<|placeholder6|>", "<|user|>")
SEG_TOKEN = "[SEG]"


def build_phi3_tokenizer(preset: str | VideoGLaMMPreset = "tiny"):
    """A ``PreTrainedTokenizerFast`` with Phi-3's special tokens at ``special_base ..`` and ``[SEG]`` last."""
    p = get_preset(preset)
    trained, merges = _trained_bpe()
    vocab = {"<unk>": 0, "<s>": 1, "</s>": 2}
    vocab.update({t: i + 3 for t, i in trained.items()})
    if len(vocab) > p.special_base:
        raise ValueError(f"the stand-in vocabulary ({len(vocab)}) exceeds preset {p.name!r}'s "
                         f"{p.special_base}")
    for i in range(len(vocab), p.special_base):
        vocab[f"<|litelvlm_filler_{i}|>"] = i

    tok = Tokenizer(models.BPE(vocab=vocab, merges=merges, unk_token="<unk>"))
    tok.normalizer = normalizers.NFC()
    tok.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(PRETOKENIZE_REGEX), behavior="isolated"),
        pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)])
    tok.decoder = decoders.ByteLevel()
    tok.post_processor = processors.TemplateProcessing(single="<s> $A", pair="<s> $A <s> $B",
                                                       special_tokens=[("<s>", 1)])
    tok.add_special_tokens([AddedToken(t, special=True, normalized=False) for t in ("<unk>", "<s>", "</s>")])
    tok.add_special_tokens([AddedToken(t, special=True, normalized=False) for t in PHI3_SPECIAL])
    tok.add_tokens([AddedToken(SEG_TOKEN, normalized=False)])
    out = PreTrainedTokenizerFast(tokenizer_object=tok, bos_token="<s>", eos_token="<|endoftext|>",
                                  unk_token="<unk>", pad_token="<unk>", model_max_length=4096)
    seg = out.convert_tokens_to_ids(SEG_TOKEN)
    if seg != p.seg_token_id or out.convert_tokens_to_ids("<|user|>") != p.special_base + 10:
        raise ValueError(f"stand-in tokenizer ids do not match preset {p.name!r}: [SEG] = {seg}")
    return out


__all__ = ["PHI3_SPECIAL", "SEG_TOKEN", "build_phi3_tokenizer"]
