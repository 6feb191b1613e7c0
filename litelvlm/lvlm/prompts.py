"""GLaMM's prompt format (LLaVA v1 conversation), image-placeholder tokenisation and [SEG] arithmetic.

A prompt holds ONE image placeholder (``IMAGE_PLACEHOLDER`` = -200, as in LLaVA's
``tokenizer_image_token``); the pipeline replaces it by the K visual tokens the LLM
receives. The mask of the i-th ``[SEG]`` is read from the final hidden state at the
position that PREDICTS it, i.e. one before it, in the expanded sequence.
"""

from __future__ import annotations

import torch

from ..errors import LiteLVLMError

IMAGE_TOKEN = "<image>"
IMAGE_PLACEHOLDER = -200
IM_START, IM_END = "<im_start>", "<im_end>"
SYSTEM = ("A chat between a curious human and an artificial intelligence assistant. "
          "The assistant gives helpful, detailed, and polite answers to the human's questions.")
ROLES = ("USER", "ASSISTANT")

#: The single-turn template of the per-expression protocol (GLaMM's first question/answer templates).
DEFAULT_QUESTION = "Can you segment the {sent} in this image?"
DEFAULT_ANSWER = "It is [SEG]."


def build_prompt(turns: list[tuple[str, str]], use_im_start_end: bool = True) -> str:
    """LLaVA-v1 conversation text: the image goes before the first question; answers end with ``</s>``."""
    if not turns:
        raise LiteLVLMError("a prompt needs at least one (question, answer) turn")
    image = f"{IM_START}{IMAGE_TOKEN}{IM_END}" if use_im_start_end else IMAGE_TOKEN
    out = SYSTEM + " "
    for i, (q, a) in enumerate(turns):
        q = f"{image}\n{q}" if i == 0 else q
        out += f"{ROLES[0]}: {q} {ROLES[1]}: {a}</s>"
    return out


def seg_turns(sentences: list[str], question: str = DEFAULT_QUESTION,
              answer: str = DEFAULT_ANSWER) -> list[tuple[str, str]]:
    """One (question, answer) turn per sentence, the answer holding one ``[SEG]`` (``{sent}`` in the question)."""
    return [(question.format(sent=s.strip().rstrip(".")), answer) for s in sentences]


def tokenize_prompt(tokenizer, prompt: str) -> torch.Tensor:
    """Token ids (1-D long) with ``IMAGE_PLACEHOLDER`` where ``<image>`` stood (LLaVA's tokenizer_image_token)."""
    chunks = [tokenizer(c, add_special_tokens=True)["input_ids"] for c in prompt.split(IMAGE_TOKEN)]
    if len(chunks) != 2:
        raise LiteLVLMError(f"a prompt needs exactly one {IMAGE_TOKEN}; got {len(chunks) - 1}")
    bos = tokenizer.bos_token_id
    ids = list(chunks[0])
    rest = chunks[1][1:] if bos is not None and chunks[1][:1] == [bos] else chunks[1]
    return torch.tensor(ids + [IMAGE_PLACEHOLDER] + rest, dtype=torch.long)


def image_offset(input_ids: torch.Tensor) -> int:
    """Index of the (single) image placeholder."""
    where = (input_ids == IMAGE_PLACEHOLDER).nonzero().flatten()
    if where.numel() != 1:
        raise LiteLVLMError(f"expected one image placeholder in the prompt ids, found {where.numel()}")
    return int(where[0])


def expand_image(input_ids: torch.Tensor, num_visual: int, fill: int) -> torch.Tensor:
    """Replace the placeholder by ``num_visual`` copies of ``fill`` (the expanded sequence)."""
    p = image_offset(input_ids)
    return torch.cat([input_ids[:p], torch.full((num_visual,), fill, dtype=input_ids.dtype), input_ids[p + 1:]])


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
