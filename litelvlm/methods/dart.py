"""DART (Wen et al., 2025) inside the LLM: after decoder layer K-1, keep a few pivot tokens and the visual
tokens LEAST similar to them; layers K.. run on the kept tokens with their ORIGINAL RoPE positions.

Official source: ZichenWen1/DART @ 9fee9fa, ``llava/model/language_model/modeling_llama_self.py``. Budgets
the official count does not reach are this project's mapping (the deviations list).

Details, the official statements with their lines and the deviations: docs/methods/dart.md
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ..errors import LiteLVLMError
from ..llm.attention_rows import rotated_keys
from ..llm.context import LLMContext
from ..llm.pruned_forward import pruned_at_layer, pruned_forward
from ..method import Method
from ..pruning.selection import Selection

#: ``--pruned_layer 2`` in every ``scripts/v1_5/eval/*.sh``: pruning before decoder layer 2.
DEFAULT_LAYER = 2
#: ``--pivot_image_token 4`` / ``--pivot_text_token 4`` in the scripts.
PIVOT_IMAGE_TOKENS = 4
PIVOT_TEXT_TOKENS = 4


def key_states(ctx: LLMContext, layer: int) -> torch.Tensor:
    """(S - image_start, H*d) keys of decoder layer ``layer`` (RoPE applied, ``repeat_kv``, heads
    concatenated) for the visual tokens and the text after them, as DART's ``any_states``."""
    s = ctx.image_start
    hidden = ctx.hidden_before(layer)
    x = ctx.lm.layers[layer].input_layernorm(hidden[:, s:])
    cos, sin = ctx.lm.rotary_emb(hidden, position_ids=ctx.position_ids)
    k = rotated_keys(ctx.lm.layers[layer].self_attn, x, cos[:, s:], sin[:, s:])
    return k.permute(0, 2, 1, 3).reshape(x.shape[1], -1)


def pivot_counts(picks: int, num_pivots: int) -> list[int]:
    """Picks per pivot in processing order: ``picks // num_pivots`` each, one more for the first
    ``picks % num_pivots`` (the official ``TOKEN_TOPK`` for all when the division is exact)."""
    t, r = divmod(picks, num_pivots)
    return [t + int(i < r) for i in range(num_pivots)]


def retained_image_tokens(state: torch.Tensor, keys: torch.Tensor, image_start: int, num_visual: int,
                          budget: int, pivot_image: int = PIVOT_IMAGE_TOKENS,
                          pivot_text: int = PIVOT_TEXT_TOKENS) -> dict[str, torch.Tensor]:
    """``get_retained_image_token`` with an exact budget: ``state`` (S, h) normed hidden states
    leaving layer K-1, ``keys`` (S - image_start, H*d) its keys from the image on.

    Returns ``kept`` (sorted sequence positions of the kept visual tokens), ``image_pivots``
    (positions, norm order), ``text_pivots`` and ``order`` (pivots in processing order)."""
    n_img = min(pivot_image, budget)
    n_txt = min(pivot_text, keys.shape[0] - num_visual)
    k_states_image_token = keys[:num_visual]
    k_states_query_token = keys[num_visual:]
    k_states_image_token_L1_norm = torch.norm(k_states_image_token, p=1, dim=-1)
    k_states_query_token_L1_norm = torch.norm(k_states_query_token, p=1, dim=-1)
    image_indices = (k_states_image_token_L1_norm.topk(n_img).indices + image_start).tolist()
    query_indices = (k_states_query_token_L1_norm.topk(n_txt).indices + image_start + num_visual).tolist()
    order = list(set(image_indices + query_indices))  # the official processing order (deviation 2)
    kept = list(image_indices)
    valid = sorted(set(range(image_start, image_start + num_visual)) - set(image_indices))
    for item, count in zip(order, pivot_counts(budget - n_img, len(order))):
        if count == 0:
            continue
        valid_vectors = state[valid, :]
        cos_sim = -F.cosine_similarity(state[item, :], valid_vectors, dim=-1)
        top_k_indices = cos_sim.topk(count).indices.tolist()
        picked = [valid[i] for i in top_k_indices]
        kept += picked
        gone = set(picked)
        valid = [v for v in valid if v not in gone]
    as_tensor = lambda xs: torch.tensor(xs, dtype=torch.long)  # noqa: E731
    return {"kept": torch.sort(as_tensor(kept)).values, "image_pivots": as_tensor(image_indices),
            "text_pivots": as_tensor(query_indices), "order": as_tensor(order),
            "key_norm": k_states_image_token_L1_norm}


def dart_select(ctx: LLMContext, budget: int, *, layer: int = DEFAULT_LAYER,
                pivot_image: int = PIVOT_IMAGE_TOKENS, pivot_text: int = PIVOT_TEXT_TOKENS) -> Selection:
    """The ``budget`` visual tokens DART keeps before decoder layer ``layer`` (pivots by key L1 norm at
    layer ``layer-1``, then the tokens least similar to each pivot); raster order."""
    if not 1 <= layer <= ctx.num_layers:
        raise LiteLVLMError(f"DART layer K must be in 1..{ctx.num_layers}; got {layer}")
    if pivot_image < 1 or pivot_text < 0:
        raise LiteLVLMError(f"DART needs pivot_image >= 1 and pivot_text >= 0; got {pivot_image}, "
                            f"{pivot_text}")
    state = ctx.lm.norm(ctx.hidden_before(layer))[0].detach()  # the cache keeps its graph (captum)
    keys = key_states(ctx, layer - 1).detach()
    out = retained_image_tokens(state, keys, ctx.image_start, ctx.num_visual, budget, pivot_image, pivot_text)
    s = ctx.image_start
    return Selection(indices=out["kept"] - s, scores=out["key_norm"].float().cpu(),
                     prune_layer=layer, parts={"pivots": out["image_pivots"] - s,
                            "text_pivots": out["text_pivots"], "pivot_order": out["order"]})


def dart_schedule(budget: int, num_visual: int, num_layers: int, *, layer: int = DEFAULT_LAYER):
    """N visual tokens up to layer K-1, K from DART's layer on (FastV's mechanism)."""
    return pruned_at_layer(budget, num_visual, num_layers, layer=layer)


DART = Method("llm-layer", dart_select, forward=pruned_forward, schedule=dart_schedule, host_sync=True,
              ranks=True, positions="keep",
              name="dart",
              description=("DART: after LLM layer K-1, keep pivot tokens (largest key L1 norm) and the "
                           "visual tokens least similar to them (kept tokens keep their RoPE positions)"))
