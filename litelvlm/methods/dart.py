"""DART (Wen et al., 2025, "Stop Looking for Important Tokens in Multimodal Language Models:
Duplication Matters More") inside the LLM: after decoder layer K-1, keep a few pivot tokens and
the visual tokens LEAST similar to them; layers K.. run on the kept tokens with their ORIGINAL
RoPE positions (the FastV mechanism, :func:`litelvlm.llm.pruned_forward.run_pruned_from`).

A statement-level port of the official LLaVA code, ZichenWen1/DART @ 9fee9fa199d591cf91891ad468ab52c754de9bf5
(read from the fork xqy1111111/DART, which holds the official history). The model file is
unchanged up to the last official commit 5a19452fc173017191c247848673e0bde755695a, at which
the other files are read:

* ``llava/model/language_model/llava_llama.py`` L37, L45: LLaVA's LLM is the ``DART`` model.
* ``llava/model/language_model/modeling_llama_self.py``:

  - L331-359 (``DART.forward``): when the loop reaches decoder layer ``K`` (prefill only), the
    outputs of layer ``K-1`` give ``last_layer_state = self.norm(layer_outputs[0])`` (the hidden
    states leaving layer K-1 through the FINAL RMSNorm) and ``any_states = layer_outputs[-2]``,
    which L968-993 and L578/L621/L881/L912 make the KEY states of layer K-1 (after RoPE, after
    ``repeat_kv``; (1, H, S, d)). The kept visual positions join every other position,
    ``keep_indexs`` is sorted, the hidden states are filtered, ``position_ids = keep_indexs``
    (original RoPE positions) and the causal mask is cut to the shorter sequence.
  - L397-449 (``get_retained_image_token``): ``TOKEN_TOPK = ceil(M // (P_img + P_txt))`` with
    ``M = max_num_trunction`` (or ``576 * (1 - reduction_ratio)`` when it is None); the keys
    are flattened over heads (S, H*d); the ``P_img`` visual tokens and the ``P_txt`` text tokens
    after the image with the largest key L1 norm are the pivots; ``valid`` = the visual tokens
    minus the visual pivots; for each pivot, in the iteration order of the Python SET of the
    pivots' sequence positions, the ``TOKEN_TOPK`` valid tokens with the LOWEST cosine
    similarity of their ``last_layer_state`` to the pivot's are added and leave ``valid``;
    finally the text pivots are removed. Kept visual tokens: the visual pivots plus
    ``(P_img + P_txt) * TOKEN_TOPK`` picks.
* ``llava/eval/model_vqa_loader.py`` L18-31, L170-179 and ``scripts/v1_5/eval/*.sh`` (e.g.
  ``textvqa.sh`` L11-27): ``--pruned_layer 2``, ``--pivot_image_token 4``,
  ``--pivot_text_token 4``, ``--image_token_start_index 35``, ``--image_token_length 576``,
  ``--attn_implementation sdpa``; ratio and ``max_num_trunction`` come from the command line,
  README L93: ``textvqa.sh 0.778 128``.

Budget. ``K`` here is the number of visual tokens the layers from ``layer`` on receive. The
official count is ``P_img + (P_img + P_txt) * TOKEN_TOPK``: the README's ``0.778 128`` keeps
4 + 8 * 16 = 132 tokens (``reduction_ratio`` is ignored whenever ``max_num_trunction`` is given,
as in every script). A budget K reproduces the official selection exactly when
``(K - P_img) % (P_img + P_txt) == 0`` (official ``M`` = K - P_img, e.g. K = 132 for M = 128,
68 for 64, 196 for 192); see deviation 1 for other K. Pivots: 4 visual + 4 text (official).

Deviations from the official code:

1. Exact budgets. The official code can only keep ``P_img + 8 * t`` tokens. Here the
   ``K - P_img`` picks are spread as evenly as possible: every pivot picks
   ``(K - P_img) // n_pivots`` and the FIRST ``(K - P_img) % n_pivots`` pivots, in the official
   processing order, pick one more. For ``K < P_img`` only the top-K visual pivots are kept.
   With fewer text tokens than ``P_txt`` after the image, all of them are pivots (the official
   ``topk`` would raise).
2. Pivot order. The official loop visits the pivots in the iteration order of a Python set of
   their sequence positions; this is kept (``list(set(image + text))``): for ints it is
   deterministic in CPython (``hash(i) == i``, not randomized), a function of the positions,
   not of the norm ranking. It matters: an earlier pivot claims its dissimilar tokens first.
   The ``valid`` list is kept ascending, which is the order ``list(set)`` gives for these
   positions (all smaller than the set's table), so ``topk`` sees the same candidate order.
3. ``image_token_start_index``/``image_token_length`` (35/576 in the scripts, LLaVA-1.5's
   prompt) are the actual position and count of the visual tokens in GLaMM's prompt; "text
   tokens" are all tokens after the image in GLaMM's teacher-forced prompt (question and
   answers with [SEG]), as the official code takes all tokens after the image in its prompt.
   Text tokens are never pruned, so the [SEG]-predicting positions always survive.
4. The keys are recomputed from layer K-1's own modules (``input_layernorm``, then
   ``attention_rows.rotated_keys``: ``k_proj``, RoPE, ``repeat_kv``) on the hidden states entering
   it, for the rows from the image on; only these (S', H*d) keys and the hidden states entering
   layer K are used, never attention matrices.

Precision: the key norms and cosine similarities are computed in the model's dtype (bfloat16 for
GLaMM), as the official code does, whatever ``score_dtype`` (DART uses no attention probabilities).
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
