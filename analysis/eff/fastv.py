"""FastV (Chen et al., 2024) on a transformers Llama, with forward hooks only.

Layers ``0..K-1`` see every token. At layer ``K-1`` the last token's attention (averaged over
heads) ranks the visual tokens; from layer ``K`` on only the ``keep`` best visual tokens and all
text tokens go on, with their original positions (rotary cos/sin and the causal mask are sliced
to the kept positions). Only the last query row of layer ``K-1``'s attention is ever formed.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch
from torch import nn

#: FastV's default pruning layer (K=2).
FASTV_LAYER = 2


def _last_row_attention(q: torch.Tensor, k: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor,
                        heads: int) -> torch.Tensor:
    """(n,) head-averaged attention of the last query over all keys, rotary applied as in Llama."""
    from transformers.models.llama.modeling_llama import apply_rotary_pos_emb

    b, n, d = k.shape
    hd = d // heads
    qh = q[:, -1:].reshape(b, 1, heads, hd).transpose(1, 2)
    kh = k.reshape(b, n, heads, hd).transpose(1, 2)
    qh, _ = apply_rotary_pos_emb(qh, qh, cos[:, -1:], sin[:, -1:])
    _, kh = apply_rotary_pos_emb(kh, kh, cos, sin)
    logits = (qh.float() @ kh.float().transpose(-1, -2)) * hd ** -0.5  # (b, H, 1, n)
    return logits.softmax(-1).mean(1)[0, 0]


@contextlib.contextmanager
def fastv_pruning(model: nn.Module, *, vis_start: int, num_visual: int, keep: int,
                  layer: int = FASTV_LAYER) -> Iterator[dict]:
    """Within the block, a forward of ``model`` (a ``LlamaForCausalLM``) prunes visual tokens FastV-style.

    The yielded dict receives ``kept`` (the kept visual indices, 0..num_visual-1) after a forward.
    """
    layers = model.model.layers
    heads = model.config.num_attention_heads
    if not 1 <= layer < len(layers):
        raise ValueError(f"FastV layer K={layer} must be in 1..{len(layers) - 1}")
    state: dict = {}
    handles = []

    def capture(name):
        def hook(_mod, _inp, out):
            state[name] = out
        return hook

    def capture_rotary(_mod, args, kwargs):
        state["cos_sin"] = kwargs["position_embeddings"]

    def prune(_mod, args, kwargs):
        hidden = args[0] if args else kwargs["hidden_states"]
        if "keep_idx" not in state:
            cos, sin = state["cos_sin"]
            row = _last_row_attention(state["q"], state["k"], cos, sin, heads)
            vis = row[vis_start:vis_start + num_visual]
            top = torch.sort(torch.topk(vis, keep).indices).values
            n = hidden.shape[1]
            dev = hidden.device
            state["kept"] = top
            state["keep_idx"] = torch.cat([torch.arange(vis_start, device=dev), vis_start + top.to(dev),
                                           torch.arange(vis_start + num_visual, n, device=dev)])
            for name in ("q", "k"):
                state.pop(name)
            hidden = hidden.index_select(1, state["keep_idx"])
            args = (hidden,) + tuple(args[1:]) if args else args
            if not args:
                kwargs["hidden_states"] = hidden
        idx = state["keep_idx"]
        cos, sin = kwargs["position_embeddings"]
        kwargs["position_embeddings"] = (cos.index_select(1, idx), sin.index_select(1, idx))
        if kwargs.get("position_ids") is not None:
            kwargs["position_ids"] = kwargs["position_ids"].index_select(1, idx)
        mask = kwargs.get("attention_mask")
        if isinstance(mask, torch.Tensor) and mask.dim() == 4:
            kwargs["attention_mask"] = mask.index_select(2, idx).index_select(3, idx)
        return args, kwargs

    def reset(_mod, args, kwargs):
        for key in ("keep_idx", "q", "k", "cos_sin"):
            state.pop(key, None)

    try:
        handles.append(model.model.register_forward_pre_hook(reset, with_kwargs=True))
        attn = layers[layer - 1].self_attn
        handles.append(attn.q_proj.register_forward_hook(capture("q")))
        handles.append(attn.k_proj.register_forward_hook(capture("k")))
        handles.append(layers[layer - 1].register_forward_pre_hook(capture_rotary, with_kwargs=True))
        for blk in layers[layer:]:
            handles.append(blk.register_forward_pre_hook(prune, with_kwargs=True))
        yield state
    finally:
        for h in handles:
            h.remove()
