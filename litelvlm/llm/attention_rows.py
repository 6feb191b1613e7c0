"""Attention rows of chosen queries in a Llama-family decoder layer, recomputed from its own modules.

:func:`rows_from_hidden` recomputes, with a self-attention module's own projections, rotary
embedding, scaling and mask, the softmax rows of the chosen query positions from the hidden
states the module receives (after ``input_layernorm``): only those ``Q`` rows, never an
``(S, S)`` matrix, whatever attention implementation the model uses (eager, sdpa, flash). By
default the logits are formed and the softmax taken in at least float32; ``kernel=`` reproduces the
official in-LLM methods' own precision instead (:data:`ROW_KERNELS`). :func:`rotated_keys` are the keys
it uses (RoPE applied, repeated over the query groups).

:func:`capture_attention_rows` runs it from forward pre-hooks during ONE prefill forward and keeps
the rows restricted to the given key positions (the visual tokens): :class:`AttentionRows`,
``(B, H, V)`` per query set and layer. Works for Llama-family attention modules (``q_proj``,
``k_proj``, ``head_dim``, ``scaling``, ``num_key_value_groups``, rotary
``position_embeddings``); hooks are removed when the ``with`` block ends, even on error.
"""

from __future__ import annotations

import contextlib
import math
import sys
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field

import torch
from torch import nn

from ..machine.memory import attention_rows_bytes, check_fits


def find_attention_modules(model: nn.Module) -> list[nn.Module]:
    """The decoder's self-attention modules in layer order (Llama-family:
    ``q_proj``/``k_proj``/``layer_idx``)."""
    mods = [m for m in model.modules()
            if (hasattr(m, "qkv_proj") or all(hasattr(m, a) for a in ("q_proj", "k_proj")))
            and all(hasattr(m, a) for a in ("head_dim", "scaling", "layer_idx", "num_key_value_groups"))]
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


def rotary_fn(module: nn.Module) -> Callable:
    """The ``apply_rotary_pos_emb`` of the modelling file that defines ``module`` (Llama's for Llama)."""
    fn = getattr(sys.modules[type(module).__module__], "apply_rotary_pos_emb", None)
    if fn is None:
        raise ValueError(f"{type(module).__name__}: its module has no apply_rotary_pos_emb")
    return fn


def projected(module: nn.Module, x: torch.Tensor, which: str) -> torch.Tensor:
    """(..., H_which * d) query (``q``), key (``k``) or value (``v``) states of ``x``: ``q_proj`` / ``k_proj``
    / ``v_proj``, or the slice of a fused ``qkv_proj`` (Phi-3: queries, then keys, then values;
    ``Phi3Attention``); a module with a per-head ``q_norm`` / ``k_norm`` (Qwen3's attention:
    ``q_norm(q_proj(h).view(..., -1, head_dim))``) has it applied."""
    fused = getattr(module, "qkv_proj", None)
    if fused is None:
        out = getattr(module, f"{which}_proj")(x)
        norm = getattr(module, f"{which}_norm", None)
        return out if norm is None else norm(out.view(*out.shape[:-1], -1, module.head_dim)).flatten(-2)
    d = module.head_dim
    q = module.config.num_attention_heads * d
    kv = module.config.num_key_value_heads * d
    qkv = fused(x)
    return {"q": qkv[..., :q], "k": qkv[..., q:q + kv], "v": qkv[..., q + kv:]}[which]


def at_least_float32(t: torch.Tensor) -> torch.Tensor:
    """``t`` in float32, or in its own dtype where that is wider (float64)."""
    return t.to(torch.promote_types(t.dtype, torch.float32))


def rotated_keys(module: nn.Module, x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """(B, H, S, d) keys of ``x`` (B, S, h) in ``module``: ``k_proj``, RoPE (``cos``/``sin`` of these S
    rows) and, with grouped-query attention, repeated to every query head (as ``repeat_kv``)."""
    B, S, _ = x.shape
    d = module.head_dim
    k = projected(module, x, "k").view(B, S, -1, d).transpose(1, 2)
    _, k = rotary_fn(module)(k, k, cos, sin)
    groups = module.num_key_value_groups
    if groups > 1:
        k = k[:, :, None].expand(B, k.shape[1], groups, S, d).reshape(B, -1, S, d)
    return k


#: How :func:`rows_from_hidden` forms the probabilities: ``float32`` (logits and softmax in at least
#: float32), ``llama-4.28`` (transformers 4.28's eager ``LlamaAttention``, the official FastV/GLaMM stack:
#: logits in the model dtype divided by sqrt(d), masked with the dtype's minimum, float32 softmax cast
#: back), ``sparsevlm`` (SparseVLMs' ``utils.scaled_dot_product_attention``: logits in the model dtype
#: times 1/sqrt(d), -inf mask, softmax in the model dtype).
ROW_KERNELS = ("float32", "llama-4.28", "sparsevlm")


def _probabilities(q: torch.Tensor, k: torch.Tensor, module: nn.Module, allowed: torch.Tensor | None,
                   additive: torch.Tensor | None, kernel: str) -> torch.Tensor:
    """Softmax rows of ``q`` (B, H, Q, d) against ``k`` (B, H, S, d), computed as ``kernel`` does."""
    if kernel == "float32":
        logits = torch.matmul(at_least_float32(q), at_least_float32(k).transpose(2, 3)) * module.scaling
        fill = float("-inf")
    elif kernel == "llama-4.28":
        logits = torch.matmul(q, k.transpose(2, 3)) / math.sqrt(module.head_dim)
        fill = torch.finfo(logits.dtype).min
    elif kernel == "sparsevlm":
        logits = torch.matmul(q, k.transpose(2, 3)) * (1 / math.sqrt(q.size(-1)))
        fill = float("-inf")
    else:
        raise ValueError(f"kernel must be one of {', '.join(ROW_KERNELS)}; got {kernel!r}")
    if additive is not None:
        logits = logits + additive
        if kernel == "llama-4.28":
            logits = torch.max(logits, torch.tensor(fill, dtype=logits.dtype, device=logits.device))
    if allowed is not None:
        logits = logits.masked_fill(~allowed, fill)
    if kernel == "llama-4.28":
        return torch.softmax(logits, dim=-1, dtype=torch.float32).to(q.dtype)
    return torch.softmax(logits, dim=-1)


def rows_from_hidden(module: nn.Module, hidden: torch.Tensor,
                     position_embeddings: tuple[torch.Tensor, torch.Tensor],
                     attention_mask: torch.Tensor | None, query_positions: torch.Tensor,
                     key_positions: torch.Tensor | None = None, kernel: str = "float32") -> torch.Tensor:
    """(B, H, Q, V) softmax attention of ``query_positions`` onto ``key_positions`` (None: all S keys).

    ``hidden`` (B, S, h) is what the attention module receives. Recomputes what its forward
    computes for those rows: the same projections, rotary embedding, scaling and mask (a 4-D
    bool or additive mask, or causal by sequence index when ``attention_mask`` is None); the
    logits and the softmax as ``kernel`` (:data:`ROW_KERNELS`; default: in at least float32). Rows that would
    need more memory than the device has are refused first (:func:`litelvlm.machine.memory.check_fits`).
    """
    B, S, _ = hidden.shape
    qp = query_positions.to(hidden.device)
    q = projected(module, hidden[:, qp], "q").view(B, qp.numel(), -1, module.head_dim).transpose(1, 2)
    check_fits(attention_rows_bytes(B, q.shape[1], qp.numel(), S, module.head_dim),
               f"the attention rows of {qp.numel()} queries over {S} keys ({type(module).__name__}, "
               f"{q.shape[1]} heads, in float32)",
               "fewer query rows, a shorter prompt or fewer visual tokens", hidden.device)
    cos, sin = position_embeddings
    q, _ = rotary_fn(module)(q, q, cos[:, qp], sin[:, qp])
    k = rotated_keys(module, hidden, cos, sin)
    allowed = additive = None
    if isinstance(attention_mask, torch.Tensor) and attention_mask.dim() == 4:
        m = attention_mask[:, :, qp, :S]
        allowed, additive = (m, None) if m.dtype == torch.bool else (None, m)
    else:
        allowed = torch.arange(S, device=hidden.device)[None, :] <= qp[:, None]
    probs = _probabilities(q, k, module, allowed, additive, kernel)
    del k
    return probs if key_positions is None else probs[..., key_positions.to(hidden.device)]


def _query_sets(query_sets: Mapping[str, Sequence[int] | torch.Tensor]) -> dict[str, torch.Tensor]:
    qsets = {
        name: torch.as_tensor(list(p) if not isinstance(p, torch.Tensor) else p, dtype=torch.long).reshape(-1)
             for name, p in query_sets.items()}
    if any(v.numel() == 0 for v in qsets.values()):
        raise ValueError(f"empty query set in {sorted(qsets)}")
    return qsets


def _hook_inputs(args: tuple, kwargs: dict) -> tuple[torch.Tensor, tuple, torch.Tensor | None]:
    """(hidden states, position embeddings, attention mask) of one attention-module call."""
    hidden = args[0] if args else kwargs["hidden_states"]
    pe = kwargs.get("position_embeddings", args[1] if len(args) > 1 else None)
    mask = kwargs.get("attention_mask", args[2] if len(args) > 2 else None)
    if pe is None:
        raise ValueError("attention module called without position_embeddings")
    return hidden, pe, mask


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
    qsets = _query_sets(query_sets)
    union, inverse = torch.unique(torch.cat(list(qsets.values())), return_inverse=True)
    splits = torch.split(inverse, [v.numel() for v in qsets.values()])
    kp = torch.as_tensor(key_positions, dtype=torch.long).reshape(-1)
    store = AttentionRows(key_positions=kp, query_sets=qsets)

    def make_hook(layer: int):
        def hook(module, args, kwargs):
            hidden, pe, mask = _hook_inputs(args, kwargs)
            S = hidden.shape[1]
            if int(union.max()) >= S or int(kp.max()) >= S:
                raise ValueError(f"query/key positions exceed the sequence length {S}; capture needs one "
                                 "prefill forward without a KV cache")
            with torch.no_grad():
                rows = rows_from_hidden(module, hidden.detach(), pe, mask, union, kp)  # (B, H, Q, V)
                out = {}
                for name, idx in zip(qsets, splits):
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
