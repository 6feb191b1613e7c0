"""Capture only the attention rows of chosen queries onto the visual-token keys, with hooks.

A forward pre-hook on a decoder layer's self-attention module recomputes, with the module's
own projections and rotary embedding, the queries of the chosen positions and all keys, and
keeps the softmax rows restricted to the visual-token key positions: ``(B, H, V)`` per query
set and layer. The forward itself is untouched (any attention implementation, sdpa or
flash included), and no ``(S, S)`` attention matrix is ever formed. Works for Llama-family
attention modules (``q_proj``, ``k_proj``, ``head_dim``, ``scaling``, rotary
``position_embeddings``); hooks are removed when the ``with`` block ends, even on error.
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field

import torch
from torch import nn


def find_attention_modules(model: nn.Module) -> list[nn.Module]:
    """The decoder's self-attention modules in layer order (Llama-family: ``q_proj``/``k_proj``/``layer_idx``)."""
    mods = [m for m in model.modules()
            if all(hasattr(m, a) for a in ("q_proj", "k_proj", "head_dim", "scaling", "layer_idx",
                                           "num_key_value_groups"))]
    if not mods:
        raise ValueError(f"no Llama-family self-attention modules found in {type(model).__name__}")
    return sorted(mods, key=lambda m: m.layer_idx)


@dataclass
class AttentionRows:
    """Captured rows: ``rows[layer][query_set]`` is ``(B, H, V)``, the mean over that set's queries.

    ``V`` follows the order of ``key_positions`` given to :func:`capture_attention_rows`.
    """

    key_positions: torch.Tensor
    query_sets: dict[str, torch.Tensor]
    rows: dict[int, dict[str, torch.Tensor]] = field(default_factory=dict)

    @property
    def layers(self) -> list[int]:
        return sorted(self.rows)

    def per_head(self, layer: int, query_set: str) -> torch.Tensor:
        """(B, H, V) attention of ``query_set`` onto the visual keys in ``layer``."""
        return self.rows[layer][query_set]

    def head_mean(self, layer: int, query_set: str) -> torch.Tensor:
        """(B, V): :meth:`per_head` averaged over heads."""
        return self.rows[layer][query_set].mean(1)

    def stacked(self, query_set: str) -> torch.Tensor:
        """(L_captured, B, H, V) over the captured layers in ascending order."""
        return torch.stack([self.rows[layer][query_set] for layer in self.layers])


def _rotary(module: nn.Module):
    fn = getattr(sys.modules[type(module).__module__], "apply_rotary_pos_emb", None)
    if fn is None:
        raise ValueError(f"{type(module).__name__}: its module has no apply_rotary_pos_emb")
    return fn


def rows_from_hidden(module: nn.Module, hidden: torch.Tensor, position_embeddings: tuple[torch.Tensor, torch.Tensor],
                     attention_mask: torch.Tensor | None, query_positions: torch.Tensor,
                     key_positions: torch.Tensor) -> torch.Tensor:
    """(B, H, Q, V) softmax attention of ``query_positions`` onto ``key_positions`` for one layer.

    Recomputes what the module's forward computes for those rows: the same projections,
    rotary embedding, scaling and mask (causal when ``attention_mask`` is None).
    """
    rope = _rotary(module)
    B, S, _ = hidden.shape
    d = module.head_dim
    qp = query_positions.to(hidden.device)
    kp = key_positions.to(hidden.device)
    q = module.q_proj(hidden[:, qp]).view(B, qp.numel(), -1, d).transpose(1, 2)
    k = module.k_proj(hidden).view(B, S, -1, d).transpose(1, 2)
    cos, sin = position_embeddings
    q, _ = rope(q, q, cos[:, qp], sin[:, qp])
    _, k = rope(k, k, cos, sin)
    groups = module.num_key_value_groups
    if groups > 1:
        k = k[:, :, None].expand(B, k.shape[1], groups, S, d).reshape(B, -1, S, d)
    logits = torch.matmul(q, k.transpose(2, 3)) * module.scaling
    del k
    if isinstance(attention_mask, torch.Tensor) and attention_mask.dim() == 4:
        m = attention_mask[:, :, qp, :S]
        logits = logits.masked_fill(~m, float("-inf")) if m.dtype == torch.bool else logits + m
    else:
        allowed = torch.arange(S, device=hidden.device)[None, :] <= qp[:, None]
        logits = logits.masked_fill(~allowed, float("-inf"))
    probs = torch.softmax(logits.float(), dim=-1)
    return probs[..., kp]


@contextlib.contextmanager
def capture_attention_rows(model: nn.Module, query_sets: Mapping[str, Sequence[int] | torch.Tensor],
                           key_positions: Sequence[int] | torch.Tensor, layers: Sequence[int] | None = None,
                           modules: Sequence[nn.Module] | None = None,
                           to_cpu: bool = True) -> Iterator[AttentionRows]:
    """Within the block, each forward of ``model`` records :class:`AttentionRows` (last call wins).

    ``query_sets`` names sets of sequence positions (e.g. ``{"seg": [p-1], "last": [S-1]}``);
    each set's rows are averaged over its queries. ``layers`` (default: all) index the
    decoder layers; negative indices count from the end. Run ONE prefill forward (no KV
    cache) inside the block. Rows are detached (no gradient) and, with ``to_cpu``, moved off
    the accelerator as soon as a layer is done.
    """
    mods = list(modules) if modules is not None else find_attention_modules(model)
    n = len(mods)
    wanted = sorted({(i % n) for i in (range(n) if layers is None else layers)})
    for i in (layers or []):
        if not -n <= i < n:
            raise IndexError(f"layer {i} out of range for {n} decoder layers")
    qsets = {name: torch.as_tensor(list(p) if not isinstance(p, torch.Tensor) else p, dtype=torch.long).reshape(-1)
             for name, p in query_sets.items()}
    if any(v.numel() == 0 for v in qsets.values()):
        raise ValueError(f"empty query set in {sorted(qsets)}")
    union, inverse = torch.unique(torch.cat(list(qsets.values())), return_inverse=True)
    splits = torch.split(inverse, [v.numel() for v in qsets.values()])
    kp = torch.as_tensor(key_positions, dtype=torch.long).reshape(-1)
    store = AttentionRows(key_positions=kp, query_sets=qsets)

    def make_hook(layer: int):
        def hook(module, args, kwargs):
            hidden = args[0] if args else kwargs["hidden_states"]
            pe = kwargs.get("position_embeddings", args[1] if len(args) > 1 else None)
            mask = kwargs.get("attention_mask", args[2] if len(args) > 2 else None)
            if pe is None:
                raise ValueError("attention module called without position_embeddings")
            S = hidden.shape[1]
            if int(union.max()) >= S or int(kp.max()) >= S:
                raise ValueError(f"query/key positions exceed the sequence length {S}; capture needs one "
                                 "prefill forward without a KV cache")
            with torch.no_grad():
                rows = rows_from_hidden(module, hidden.detach(), pe, mask, union, kp)  # (B, H, Q, V)
                out = {}
                for (name, _), idx in zip(qsets.items(), splits):
                    r = rows[:, :, idx.to(rows.device)].mean(2)
                    out[name] = r.cpu() if to_cpu else r
            store.rows[layer] = out
        return hook

    handles = []
    try:
        for layer in wanted:
            handles.append(mods[layer].register_forward_pre_hook(make_hook(layer), with_kwargs=True))
        yield store
    finally:
        for h in handles:
            h.remove()
