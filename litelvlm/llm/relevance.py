"""Relevance in the LLM's input space: how well each visual token (the LLM input embeddings of the image)
matches the instruction's token embeddings (the LLM's ``embed_tokens`` of the prompt's text tokens).

A port of OpenVINO GenAI's CDPruner relevance (openvinotoolkit/openvino.genai @ da1db86); the parts not in
OpenVINO's code are this project's (labelled).

Details: docs/library.md (``litelvlm.llm.relevance``).
"""

from __future__ import annotations

import torch

#: OpenVINO's ``Config::numerical_threshold`` (``cdpruner_config.hpp`` L36)
EPS = 1e-6


def instruction_rows(input_ids: torch.Tensor, token_types: torch.Tensor,
                     prompt_len: int | None = None) -> torch.Tensor:
    """The prompt rows ``extract_text_features`` averages: every row before ``prompt_len`` except the vision
    region (its pads, ``token_types > 0``, and the ``<|vision_start|>`` / ``<|vision_end|>`` rows just before
    and after them)."""
    n = len(input_ids) if prompt_len is None else int(prompt_len)
    pads = torch.nonzero(token_types[:n] > 0).flatten()
    keep = torch.ones(n, dtype=torch.bool)
    if pads.numel():
        keep[max(int(pads[0]) - 1, 0):min(int(pads[-1]) + 2, n)] = False
    return torch.nonzero(keep).flatten()


def instruction_features(text_embeds: torch.Tensor) -> torch.Tensor:
    """(1, h) float32: the mean of the instruction's (T, h) token embeddings; a zero row when there is none
    (L192-197)."""
    if text_embeds.shape[0] == 0:
        return torch.zeros(1, text_embeds.shape[-1], device=text_embeds.device)
    return text_embeds.float().mean(dim=0, keepdim=True)


def normalize_l2(x: torch.Tensor, eps: float = EPS) -> torch.Tensor:
    """OpenVINO's ``NormalizeL2`` over the last axis with ``EpsMode::ADD``: ``x / sqrt(sum(x^2) + eps)``."""
    return x / torch.sqrt(torch.sum(x * x, dim=-1, keepdim=True) + eps)


def llm_relevance(visual: torch.Tensor, text: torch.Tensor, negative: bool = False,
                  eps: float = EPS) -> torch.Tensor:
    """(N,) float32 relevance of (N, h) visual tokens to (M, h) text features: the mean over the text rows of
    their cosine (negated with ``negative``), min-max normalised as ``(r - min) / (max - min + eps)``."""
    v = normalize_l2(visual.float(), eps)
    t = normalize_l2(text.to(v.device).float(), eps)
    r = torch.matmul(v, t.t()).mean(dim=-1)
    if negative:
        r = r * -1.0
    return (r - r.min()) / (r.max() - r.min() + eps)


@torch.no_grad()
def prompt_relevance(pipeline, prepared, visual: torch.Tensor | None = None) -> torch.Tensor:
    """(N,) the LLM-space relevance of ``prepared``'s visual tokens (or ``visual``, (N, h)) to its prompt: the
    instruction rows of ``prepared.input_ids`` looked up in the LLM's embedding table (Qwen2.5-VL families'
    prompts; the table is read, the module not called, so what hooks on the LLM's input see is the sequence
    alone)."""
    ids = prepared.input_ids
    rows = instruction_rows(ids, prepared.mm_token_type_ids, prepared.prompt_len)
    weight = pipeline.language_model.embed_tokens.weight
    text = instruction_features(torch.nn.functional.embedding(ids[rows].to(weight.device), weight))
    return llm_relevance(pipeline.visual_tokens(prepared) if visual is None else visual, text)


__all__ = ["EPS", "instruction_features", "instruction_rows", "llm_relevance", "normalize_l2",
           "prompt_relevance"]
