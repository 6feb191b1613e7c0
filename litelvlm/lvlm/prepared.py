"""What every family's prepared input is (:class:`Prepared`): the fields the methods and the studies read,
declared once, so that they are read plainly, never probed for."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch


@dataclass(kw_only=True)
class Prepared:
    """The base of every family's prepared input (``prepare_image`` then ``with_sentences``: the image or
    clip, its sentences and prompt). A family's input is a dataclass extending it with its own fields; these
    are keyword-only, so a family's own fields keep their order, and the defaults are what a family without
    the matching option has."""

    #: the sentences of the prompt (one [SEG] each)
    sentences: list[str]
    #: the prompt's token ids (1-D), with the family's image placeholder(s)
    input_ids: torch.Tensor
    #: the seed of the input's random choices (the official prompt's question, a random method's draw)
    seed: int = 0
    #: ``teacher-forced`` (this project's: the prompt holds a training answer with the [SEG] token) or
    #: ``generate`` (greedy decoding after the prefill, where the family's official protocol does so)
    answer: str = "teacher-forced"
    #: the prompt's length before a teacher-forced answer (None: all of ``input_ids`` is the prompt)
    prompt_len: int | None = None
    #: what this input's methods computed once and share, made on first use (the paired CLIP's traces and
    #: pixels, a vision tower's stand-ins); shared by every sentence of the input
    clip_cache: dict = field(default_factory=dict, repr=False, compare=False)

    def selector_inputs(self, *args: Any) -> Any:
        """What a CLIP-side method reads of this input (the family's own)."""
        raise NotImplementedError(f"{type(self).__name__} gives no inputs to a CLIP-side method")


__all__ = ["Prepared"]
