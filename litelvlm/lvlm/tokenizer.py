"""The LLM tokenizer: GLaMM's (a Llama tokenizer with added tokens) or a tiny offline stand-in.

The ``[SEG]`` id is always read from the tokenizer; a tokenizer without ``[SEG]`` is an
error naming the folder. The tiny tokenizer is a real byte-level-free BPE over a small
vocabulary (Llama conventions: ``<unk>``=0, ``<s>``=1, ``</s>``=2, a ``▁`` metaspace,
BOS added), wrapped in ``PreTrainedTokenizerFast`` and written with ``save_pretrained``.
"""

from __future__ import annotations

import string
from pathlib import Path

from ..errors import LiteLVLMError
from .config import ADDED_TOKENS, SEG_TOKEN

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
    from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE(unk_token="<unk>"))
    tok.normalizer = normalizers.Replace(" ", "▁")
    tok.pre_tokenizer = pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="first", split=True)
    tok.decoder = decoders.Metaspace(replacement="▁", prepend_scheme="first", split=True)
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=["<unk>", "<s>", "</s>"],
                                  initial_alphabet=list(string.printable.strip()) + ["▁", "\n"], show_progress=False)
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
    from transformers import AutoTokenizer

    path = Path(path)
    try:
        tok = AutoTokenizer.from_pretrained(str(path))
    except (OSError, ValueError) as e:
        raise LiteLVLMError(f"could not load the tokenizer from {path}: {e}") from e
    seg_token_id(tok, f"the tokenizer in {path}")
    return tok
