"""GLaMM's prompt format (LLaVA v1 conversation), image-placeholder tokenisation and [SEG] arithmetic.

A prompt holds ONE image placeholder (``IMAGE_PLACEHOLDER`` = -200, as in LLaVA's
``tokenizer_image_token``); the pipeline replaces it by the K visual tokens the LLM
receives. The mask of the i-th ``[SEG]`` is read from the final hidden state at the
position that PREDICTS it, i.e. one before it, in the expanded sequence.
"""

from __future__ import annotations

import torch

from ..data.templates import ANSWER_LIST, SEG_QUESTIONS, format_question
from ..errors import LiteLVLMError
from .tokenizer import PromptEncoder, prompt_encoder

IMAGE_TOKEN = "<image>"
IMAGE_PLACEHOLDER = -200
IM_START, IM_END = "<im_start>", "<im_end>"
#: llava_v1's system line (``model/llava/conversation.py`` L355-364 of the official code).
SYSTEM = ("A chat between a curious human and an artificial intelligence assistant. "
          "The assistant gives helpful, detailed, and polite answers to the human's questions.")
ROLES = ("USER", "ASSISTANT")
#: GLaMM's image sentence before the first question (``RefCOCO_Segm_ds.py`` L40, ``begin_str``).
BEGIN_STR = f"The {IMAGE_TOKEN} provides an overview of the picture.\n"

#: The single-turn template of the per-expression protocol: GLaMM's first question and answer.
DEFAULT_QUESTION = SEG_QUESTIONS[0]
DEFAULT_ANSWER = ANSWER_LIST[0]


def build_prompt(turns: list[tuple[str, str]], use_im_start_end: bool = True) -> str:
    """GLaMM's RefCOCO prompt: llava_v1 (``SeparatorStyle.TWO``), :data:`BEGIN_STR` before the first
    question, every answer closed by ``</s>``, ``<image>`` wrapped in ``<im_start>``/``<im_end>``."""
    if not turns:
        raise LiteLVLMError("a prompt needs at least one (question, answer) turn")
    out = SYSTEM + " "
    for i, (q, a) in enumerate(turns):
        q = BEGIN_STR + q if i == 0 else q
        out += f"{ROLES[0]}: {q} {ROLES[1]}: {a}</s>"
    return out.replace(IMAGE_TOKEN, f"{IM_START}{IMAGE_TOKEN}{IM_END}") if use_im_start_end else out


def seg_turns(sentences: list[str], question: str = DEFAULT_QUESTION,
              answer: str = DEFAULT_ANSWER) -> list[tuple[str, str]]:
    """One (question, answer) turn per sentence (``{class_name}`` filled as GLaMM fills it)."""
    return [(format_question(question, s), answer) for s in sentences]


def tokenize_prompt(encoder, prompt: str) -> torch.Tensor:
    """Token ids (1-D long) with ``IMAGE_PLACEHOLDER`` where ``<image>`` stood: LLaVA's
    ``tokenizer_image_token`` (``model/llava/mm_utils.py`` L18-43) over a
    :class:`~litelvlm.glamm.tokenizer.PromptEncoder` (or any tokenizer: it is wrapped in one)."""
    if not isinstance(encoder, PromptEncoder):
        encoder = prompt_encoder(encoder)
    chunks = [encoder.encode(c) for c in prompt.split(IMAGE_TOKEN)]
    if len(chunks) != 2:
        raise LiteLVLMError(f"a prompt needs exactly one {IMAGE_TOKEN}; got {len(chunks) - 1}")
    offset = 1 if chunks[0][:1] == [encoder.bos_id] and encoder.bos_id is not None else 0
    ids = chunks[0] + [IMAGE_PLACEHOLDER] + chunks[1][offset:]
    return torch.tensor(ids, dtype=torch.long)


def image_offset(input_ids: torch.Tensor) -> int:
    """Index of the (single) image placeholder."""
    where = (input_ids == IMAGE_PLACEHOLDER).nonzero().flatten()
    if where.numel() != 1:
        raise LiteLVLMError(f"expected one image placeholder in the prompt ids, found {where.numel()}")
    return int(where[0])


def expand_image(input_ids: torch.Tensor, num_visual: int, fill: int) -> torch.Tensor:
    """Replace the placeholder by ``num_visual`` copies of ``fill`` (the expanded sequence)."""
    p = image_offset(input_ids)
    return torch.cat(
        [input_ids[:p], torch.full((num_visual,), fill, dtype=input_ids.dtype), input_ids[p + 1:]])


def seg_predictor_positions(input_ids: torch.Tensor, num_visual: int, seg_token_id: int) -> torch.Tensor:
    """Positions, in the sequence with ``num_visual`` visual tokens, of the tokens that predict each [SEG].

    GLaMM's arithmetic: ``seg_mask = ids[1:] == seg`` shifted by ``num_visual - 1`` for the
    one-token placeholder that became ``num_visual`` tokens. Recomputed for every budget.
    """
    p = image_offset(input_ids)
    seg = (input_ids == seg_token_id).nonzero().flatten()
    if seg.numel() == 0:
        raise LiteLVLMError("the prompt has no [SEG] token")
    if (seg <= p).any():
        raise LiteLVLMError("a [SEG] token precedes the image")
    return seg - 1 + (num_visual - 1)
