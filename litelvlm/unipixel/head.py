"""UniPixel's seg head: the LLM's hidden state at a ``<|seg|>`` row becomes SAM 2's hidden-state prompt.

Source: PolyU-ChenLab/UniPixel @5c8e941, ``unipixel/model/qwen2_5_vl.py``:

* L74-76: ``seg_head = nn.Sequential(Qwen2RMSNorm(llm_dim), nn.Linear(llm_dim, llm_dim), nn.GELU(),
  nn.Linear(llm_dim, sam_dim * sam2_hidden_tokens))`` (RMSNorm eps 1e-6, exact GELU);
* L52 and L21-22: a forward pre-hook on ``language_model.norm`` keeps the norm's INPUT, so the head reads
  the last decoder layer's output before the final RMSNorm (not ``hidden_states[-1]``, which is normed);
* L300-301: the head runs on every row and its output is reshaped to ``(..., sam2_hidden_tokens, sam_dim)``;
* L343-350: the rows it keeps are the ones PREDICTING ``<|seg|>``: row ``i`` when ``input_ids[i + 1]`` is
  ``<|seg|>`` (a ``<|seg|>`` in the prompt, read on the first forward) and the last row when the model's next
  token is ``<|seg|>`` (one generated); each kept row is one prompt of shape ``(1, T, sam_dim)``.
"""

from __future__ import annotations

import torch
from torch import nn
from transformers.models.qwen2_5_vl.modeling_qwen2_5_vl import Qwen2_5_VLRMSNorm


class SegHead(nn.Sequential):
    """RMSNorm -> Linear -> GELU -> Linear to ``sam_dim * hidden_tokens``, reshaped to ``(..., T, sam_dim)``.

    Its parameters are named as UniPixel's ``seg_head`` (``0.weight``, ``1.*``, ``3.*``)."""

    def __init__(self, llm_dim: int, sam_dim: int, hidden_tokens: int, eps: float = 1e-6) -> None:
        super().__init__(Qwen2_5_VLRMSNorm(llm_dim, eps=eps), nn.Linear(llm_dim, llm_dim), nn.GELU(),
                         nn.Linear(llm_dim, sam_dim * hidden_tokens))
        self.sam_dim = sam_dim
        self.hidden_tokens = hidden_tokens

    def forward(self, hidden: torch.Tensor) -> torch.Tensor:
        """``(..., llm_dim)`` pre-norm hidden states -> ``(..., hidden_tokens, sam_dim)`` prompts."""
        out = super().forward(hidden)
        return out.reshape(*out.shape[:-1], self.hidden_tokens, self.sam_dim)
