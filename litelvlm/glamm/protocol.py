"""GLaMM's RefCOCO evaluation protocol (``--protocol official``), seeded, and a way to inspect it.

Official source: sejong-rcv/LiteLVLM @ 5896153, ``dataset/segm_datasets/RefCOCO_Segm_ds.py`` and
``eval/referring_seg/infer_and_evaluate.py``.

Details: docs/grounding.md (``litelvlm.glamm.protocol``).
"""

from __future__ import annotations

import random
import zlib
from dataclasses import dataclass

import numpy as np
import torch

from ..data.templates import ANSWER_LIST, SEG_QUESTIONS, format_question
from .prompts import build_prompt, seg_predictor_positions, tokenize_prompt
from .tokenizer import seg_token_id

#: Sentences sampled per image by GLaMM's dataset (``num_classes_per_sample``).
OFFICIAL_MAX_SENTENCES = 3
#: Datasets in the evaluation's ``refer_segm_data`` (one: ``refcoco``, ``refcoco+`` or ``refcocog``).
OFFICIAL_NUM_DATASETS = 1


@dataclass(frozen=True)
class OfficialSample:
    """One image's sampled sentences and the conversation built from them."""

    indices: list[int]                # into the image's sentence list, in conversation order
    sentences: list[str]
    questions: list[str]              # formatted questions (what LiteLVLM's CLIP embeds)
    answers: list[str]

    @property
    def turns(self) -> list[tuple[str, str]]:
        return list(zip(self.questions, self.answers))

    @property
    def prompt(self) -> str:
        """The conversation text, ``<im_start><image><im_end>`` included."""
        return build_prompt(self.turns)


def image_seed(seed: int, image_id: int) -> int:
    """The per-image seed ``crc32(f"{seed}:{image_id}")`` of both generators."""
    return zlib.crc32(f"{seed}:{image_id}".encode())


def sample_official(sentences: list[str], seed: int, image_id: int,
                    max_sentences: int = OFFICIAL_MAX_SENTENCES) -> OfficialSample:
    """GLaMM's per-image sample of ``sentences`` (in REFER order) with its questions and answers."""
    s = image_seed(seed, image_id)
    rng = random.Random(s)
    rng.randint(0, OFFICIAL_NUM_DATASETS - 1)  # the dataset pick of __getitem__ L128 (one dataset)
    if len(sentences) >= max_sentences:
        picked = np.random.RandomState(s).choice(list(range(len(sentences))), size=max_sentences,
                                                 replace=False).tolist()
    else:
        picked = list(range(len(sentences)))
    questions, answers = [], []
    for i in picked:
        questions.append(format_question(rng.choice(SEG_QUESTIONS), sentences[i]))
        answers.append(rng.choice(ANSWER_LIST))
    return OfficialSample([int(i) for i in picked], [sentences[i] for i in picked], questions, answers)


def official_prompt(tokenizer, sentences: list[str], seed: int = 0, image_id: int = 0, num_visual: int = 576,
                    max_sentences: int = OFFICIAL_MAX_SENTENCES) -> tuple[OfficialSample, torch.Tensor,
                                                                          torch.Tensor]:
    """(sample, input ids, [SEG]-predicting positions) of the official prompt for one image.

    ``input_ids`` hold one ``IMAGE_PLACEHOLDER`` (-200); the positions index the sequence in which
    the placeholder became ``num_visual`` visual tokens (GLaMM's ``_create_pruned_seg_token_mask``).
    ``tokenizer`` is a GLaMM tokenizer (``[SEG]`` is read from it).
    """
    sample = sample_official(sentences, seed, image_id, max_sentences)
    ids = tokenize_prompt(tokenizer, sample.prompt)
    return sample, ids, seg_predictor_positions(ids, num_visual, seg_token_id(tokenizer))
