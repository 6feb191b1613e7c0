"""GLaMM's RefCOCO evaluation protocol (``--protocol official``), seeded, and a way to inspect it.

What the official evaluation does per image (sejong-rcv/LiteLVLM @5896153,
``dataset/segm_datasets/RefCOCO_Segm_ds.py`` L127-169 and L106-125,
``eval/referring_seg/infer_and_evaluate.py`` L108-178 and L387-428):

0. ``random.randint(0, len(refer_seg_ds_list) - 1)`` picks the dataset (L128): with the one
   dataset of an evaluation that is ``randint(0, 0)``, which still advances Python's generator
   (``getrandbits(1)`` until it returns 0), before any question is drawn;
1. every sentence (``sent``) of every ref of the image is listed, refs in REFER-file order and
   sentences in their ref's order;
2. with 3 or more sentences, ``np.random.choice(range(n), size=3, replace=False)`` picks 3 (in
   the order drawn); with fewer, all of them in order;
3. for each picked sentence in that order, ``random.choice(SEG_QUESTIONS)`` then
   ``random.choice(ANSWER_LIST)`` (Python's ``random``); the sentence fills the question after
   ``strip().lower()``;
4. ONE multi-turn llava_v1 conversation holds all turns, the first question preceded by
   :data:`~litelvlm.glamm.prompts.BEGIN_STR`; all masks come from one forward pass;
5. LiteLVLM's CLIP text encoder embeds the formatted questions (not the bare sentences).

The official code draws from the unseeded global generators of its data-loader workers, so its
sample changes from run to run. Here both generators are seeded per image: numpy
``RandomState(s)`` draws step 2 and Python ``random.Random(s)`` step 3, with
``s = crc32(f"{seed}:{image_id}")``. Python's generator makes step 0's draw first, as the official
one does (the evaluation's ``validation=True``, infer_and_evaluate.py L336, skips the image draw
of L134), so generators in the same state give the official draws. The seed fixes which sentences
are evaluated, their order in the conversation, and each one's question and answer; the result
does not depend on ``--limit``, sharding or the order in which images are processed.
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
