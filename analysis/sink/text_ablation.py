"""Alternative text representations for the sink ablation, computed with the model's own modules.

* :func:`rerun_text_tower`: re-run the text blocks from ``hidden_states[from_block]`` with a
  custom attention mask (causal, plus, optionally, [SOS] hidden from the [EOS] query in
  every re-run block), then the final norm, [EOS] pooling and the text projection. With
  ``mask_sos=False`` it reproduces ``text_embeds`` (a built-in consistency check).
* :func:`content_mean_embeds`: the mean of the content tokens (between [SOS] and [EOS]) of
  the final hidden states, each through the final norm, then the text projection.

No model code is patched: the layer modules are called directly with an explicit mask.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from litelvlm.clip.traces import TextTrace

import torch


def _parts(clip):
    """(blocks, final_norm, project(x), batch_first, kind) of a backend's text tower."""
    model = clip.modules()
    if hasattr(model, "text_model"):  # transformers CLIPModel
        tm = model.text_model
        return list(tm.encoder.layers), tm.final_layer_norm, model.text_projection, True, "hf"
    text = clip._text  # open_clip CLIP (model) or CustomTextCLIP (model.text)
    proj = text.text_projection

    def project(x: torch.Tensor) -> torch.Tensor:
        if proj is None:
            return x
        return proj(x) if isinstance(proj, torch.nn.Linear) else x @ proj

    return (list(text.transformer.resblocks), text.ln_final, project,
            getattr(text.transformer, "batch_first", True), "open_clip")


def _additive_mask(eos: torch.Tensor, seq: int, mask_sos: bool, dtype: torch.dtype) -> torch.Tensor:
    """(T, S, S) additive mask: causal; with ``mask_sos`` the [EOS] row cannot see position 0."""
    T = eos.shape[0]
    q = torch.arange(seq)[:, None]
    k = torch.arange(seq)[None, :]
    blocked = (k > q)[None].expand(T, seq, seq).clone()
    if mask_sos:
        blocked[torch.arange(T), eos, 0] = True
    return torch.zeros(T, seq, seq, dtype=dtype).masked_fill(blocked, float("-inf"))


@torch.no_grad()
def rerun_text_tower(clip, trace: TextTrace, from_block: int, mask_sos: bool = True) -> torch.Tensor:
    """(T, D) text embeddings re-computed from ``hidden_states[from_block]`` with [SOS] masked for [EOS]."""
    blocks, norm, project, batch_first, kind = _parts(clip)
    hs = trace.hidden_states
    if hs is None:
        raise ValueError("rerun_text_tower needs a TextTrace with hidden_states")
    L = len(blocks)
    if not 0 <= from_block <= L:
        raise ValueError(f"from_block must be in 0..{L}, got {from_block}")
    dev, dt = clip.device, clip.dtype
    x = hs[from_block].to(dev, dt)
    eos = trace.eos_index.to(torch.long).cpu()
    T, S = x.shape[:2]
    mask = _additive_mask(eos, S, mask_sos, dt).to(dev)
    if kind == "hf":
        m4 = mask[:, None]  # (T, 1, S, S), broadcast over heads
        for blk in blocks[from_block:]:
            out = blk(x, attention_mask=m4)
            x = out[0] if isinstance(out, tuple) else out
    else:
        heads = clip.text_heads
        m3 = mask[:, None].expand(T, heads, S, S).reshape(T * heads, S, S)
        for blk in blocks[from_block:]:
            x = blk(x if batch_first else x.transpose(0, 1), attn_mask=m3)
            x = x if batch_first else x.transpose(0, 1)
    x = norm(x)
    pooled = x[torch.arange(T, device=x.device), eos.to(x.device)]
    return project(pooled).float().cpu()


@torch.no_grad()
def content_mean_embeds(clip, trace: TextTrace) -> torch.Tensor:
    """(T, D) projection of the mean final-normed hidden state over the content tokens (1..eos-1).

    A text with no content token (empty string) gets a NaN row.
    """
    _, norm, project, _, _ = _parts(clip)
    x = norm(trace.hidden_states[-1].to(clip.device, clip.dtype)).float()
    eos = trace.eos_index.to(torch.long).to(x.device)
    pos = torch.arange(x.shape[1], device=x.device)[None]
    w = ((pos >= 1) & (pos < eos[:, None])).float()
    n = w.sum(1, keepdim=True)
    mean = (w[..., None] * x).sum(1) / n.clamp(min=1)
    out = project(mean.to(clip.dtype)).float().cpu()
    out[(n[:, 0] == 0).cpu()] = float("nan")
    return out
