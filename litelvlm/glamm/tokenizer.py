"""The LLM tokenizer: GLaMM's (a Llama tokenizer with added tokens) or a tiny offline stand-in.

The ``[SEG]`` id is always read from the tokenizer; a tokenizer without ``[SEG]`` is an
error naming the folder. The tiny tokenizer is a real byte-level-free BPE over a small
vocabulary (Llama conventions: ``<unk>``=0, ``<s>``=1, ``</s>``=2, a ``▁`` metaspace,
BOS added), wrapped in ``PreTrainedTokenizerFast`` and written with ``save_pretrained``.
"""

from __future__ import annotations

import re
import string
from pathlib import Path

import sentencepiece as spm
from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors, trainers
from transformers import AutoTokenizer, PreTrainedTokenizerFast

from ..errors import LiteLVLMError
from ..models.shared_tokenizer import shared_tokenizer
from .config import ADDED_TOKENS, SEG_TOKEN

#: LLaMA's special tokens, in their ids' order: the ones a slow tokenizer never splits and never strips around
#: (``AddedToken`` with lstrip = rstrip = False in GLaMM-RefSeg's ``tokenizer_config.json``)
SPECIAL_TOKENS = ("<unk>", "<s>", "</s>")

_CORPUS_WORDS = (
    "a chat between curious human and an artificial intelligence assistant the gives helpful detailed "
    "polite answers to human's questions user can you segment in this image please output segmentation mask "
    "what is it sure result here are of on left right middle front back top bottom biggest smallest "
    "leftmost rightmost person man woman boy girl child dog cat horse car bus truck bike bowl cup chair "
    "table couch bed bird sheep cow elephant bear zebra giraffe umbrella bottle pizza cake banana "
    "apple orange sandwich broccoli donut laptop phone tv book clock vase with near next behind white black "
    "red blue green yellow brown small large big tall short two one three guy lady kid baby shirt")


def build_tiny_tokenizer(path: str | Path | None = None, vocab_size: int = 384):
    """A small Llama-style BPE tokenizer with GLaMM's added tokens (saved to ``path`` if given)."""
    tok = Tokenizer(models.BPE(unk_token="<unk>"))
    tok.normalizer = normalizers.Replace(" ", "▁")
    tok.pre_tokenizer = pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="first", split=True)
    tok.decoder = decoders.Metaspace(replacement="▁", prepend_scheme="first", split=True)
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=list(SPECIAL_TOKENS),
                                  initial_alphabet=list(string.printable.strip()) + ["▁", "\n"],
                                  show_progress=False)
    corpus = [_CORPUS_WORDS, _CORPUS_WORDS.upper(), string.punctuation, "0 1 2 3 4 5 6 7 8 9"]
    tok.train_from_iterator(corpus, trainer=trainer)
    tok.normalizer = None
    tok.post_processor = processors.TemplateProcessing(single="<s> $A", pair="<s> $A <s> $B",
                                                       special_tokens=[("<s>", 1)])
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, bos_token="<s>", eos_token="</s>", unk_token="<unk>",
                                   pad_token="<unk>", model_max_length=2048, padding_side="right")
    fast.add_tokens(list(ADDED_TOKENS), special_tokens=True)
    if path is not None:
        fast.save_pretrained(str(path))
    return fast


def seg_token_id(tokenizer, where: str = "the tokenizer") -> int:
    """The id of ``[SEG]`` read from the tokenizer; an error naming ``where`` if it has none."""
    vocab = tokenizer.get_vocab()
    if SEG_TOKEN not in vocab:
        raise LiteLVLMError(f"{where} has no {SEG_TOKEN} token: it is not a GLaMM tokenizer "
                            f"(expected added tokens {', '.join(ADDED_TOKENS)})")
    return int(vocab[SEG_TOKEN])


def load_tokenizer(path: str | Path):
    """``AutoTokenizer.from_pretrained(path)``, checked for ``[SEG]``."""
    path = Path(path)
    try:
        tok = shared_tokenizer(path, lambda: AutoTokenizer.from_pretrained(str(path)), "AutoTokenizer")
    except (OSError, ValueError) as e:
        raise LiteLVLMError(f"could not load the tokenizer from {path}: {e}") from e
    seg_token_id(tok, f"the tokenizer in {path}")
    return tok


class PromptEncoder:
    """Text -> ids exactly as GLaMM's pinned slow ``LlamaTokenizer`` (transformers 4.28) encodes it.

    The text is split at the added tokens (``[SEG]``, ``<im_start>``, ...) and at ``<s>``,
    ``</s>``, ``<unk>``; whitespace next to an added token is stripped (not next to the three
    special ones); each remaining chunk is encoded on its own (sentencepiece adds its dummy
    prefix ``▁`` to every chunk); BOS goes first. Current transformers keep the whitespace, so
    ``It is [SEG].`` would end ``▁is ▁ [SEG] .`` instead of the official ``▁is [SEG] ▁.``.
    """

    def __init__(self, encode_chunk, added: dict[str, int], special: dict[str, int], bos_id: int | None):
        self.encode_chunk = encode_chunk
        self.added = dict(added)
        self.special = dict(special)
        self.bos_id = bos_id
        tokens = sorted({**self.added, **self.special}, key=len, reverse=True)
        self._split = re.compile("(" + "|".join(re.escape(t) for t in tokens) + ")") if tokens else None

    def pieces(self, text: str) -> list[str]:
        """The text cut at no-split tokens, whitespace stripped as transformers 4.28 ``tokenize`` does."""
        parts = [p for p in (self._split.split(text) if self._split else [text]) if p]
        for i, p in enumerate(parts):
            if p in self.added:  # added tokens strip both neighbours; <s>, </s>, <unk> strip nothing
                if i + 1 < len(parts) and parts[i + 1]:
                    parts[i + 1] = parts[i + 1].lstrip()
                if i > 0 and parts[i - 1]:
                    parts[i - 1] = parts[i - 1].rstrip()
        return [p for p in parts if p]

    def encode(self, text: str, add_bos: bool = True) -> list[int]:
        """Token ids of ``text`` (BOS first when ``add_bos``)."""
        ids = [self.bos_id] if add_bos and self.bos_id is not None else []
        for p in self.pieces(text):
            tok = self.added.get(p, self.special.get(p))
            ids.extend([tok] if tok is not None else self.encode_chunk(p))
        return ids

    __call__ = encode


def _sentencepiece_file(tokenizer) -> Path | None:
    for cand in (getattr(tokenizer, "vocab_file", None),
                 Path(str(getattr(tokenizer, "name_or_path", "") or "")) / "tokenizer.model"):
        if cand and Path(cand).is_file():
            return Path(cand)
    return None


def prompt_encoder(tokenizer) -> PromptEncoder:
    """The :class:`PromptEncoder` of a loaded tokenizer: its sentencepiece model when the folder has
    ``tokenizer.model`` (GLaMM-RefSeg's slow layout), else the tokenizer's own chunk encoding."""
    vocab = tokenizer.get_vocab()
    special = {t: vocab[t] for t in SPECIAL_TOKENS if t in vocab}
    added = {t: i for t,
             i in tokenizer.get_added_vocab().items() if t not in special and t != tokenizer.pad_token}
    spm_file = _sentencepiece_file(tokenizer)
    if spm_file is not None:
        sp = spm.SentencePieceProcessor(model_file=str(spm_file))
        if sp.get_piece_size() > len(vocab):
            raise LiteLVLMError(f"{spm_file} has {sp.get_piece_size()} pieces, more than the tokenizer's "
                                f"{len(vocab)} tokens")

        def encode_chunk(text: str) -> list[int]:
            return list(sp.encode(text))
    else:
        def encode_chunk(text: str) -> list[int]:
            return list(tokenizer(text, add_special_tokens=False)["input_ids"])
    return PromptEncoder(encode_chunk, added, special, tokenizer.bos_token_id)
