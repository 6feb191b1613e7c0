"""VisionZip (Yang et al., 2025): dominant tokens by [CLS] attention plus merged contextual tokens.

A statement-level port of the official code, dvlab-research/VisionZip at commit
3151f6df4fca36a4cd1c985e5956e725b1f9ad02:

* ``visionzip/main.py`` L5-7: ``visionzip(model, dominant=D, contextual=C)`` keeps D - 1
  patches plus the CLS token as the D dominant tokens, and C contextual tokens; the LLM
  receives D + C tokens. The README (L127-128) uses D = 54, C = 10 (64 tokens); the paper's
  LLaVA-1.5 settings are 54/10, 108/20 and 162/30 for 64/128/192 tokens, i.e. D = K * 27/32.
* ``visionzip/utils.py`` L21-24, L89, L113-124, L191: the merge metric is the KEY
  projection ``k_proj(layer_norm1(h))`` of encoder block -2 (``r`` is 1 only for block 22
  of 24), split into heads and averaged over the heads (``raw_key_states.mean(1)``: one
  64-dim vector per token, not the 1024-dim concatenation).
* ``visionzip/clip_encoder.py`` L42-85, for one image (S = 1 + N tokens):

  - ``hidden_states[-2]`` (the output of block -2, CLS included) are the merged states and
    ``attentions[-2]`` (block -2) gives the CLS query's attention over the patches, SUMMED
    over heads; the top D - 1 patches by it (CLS excluded) and the CLS token are dominant;
  - dominant tokens are taken through a mask, so in sequence order: ``[CLS, patches in
    raster order]``;
  - the other patches (raster order) are the candidates; their metric is divided by its
    L2 norm; ``step = max(1, R // C)``, targets are candidates ``0, step, 2*step, ...``
    (the first C); every other candidate is assigned to the target of highest cosine
    (``argmax``, first on ties);
  - contextual token = ``target_hidden + sum(assigned hidden) / max(1, n_assigned)``:
    the target's state PLUS the mean of its assigned states (not the mean of both);
  - the LLM receives ``cat[dominant, contextual]`` (contextual in target order) through
    the projector (``visionzip/llava_arch.py`` L31-35, L135).

Representation in :class:`~litelvlm.pruning.selection.Selection` (budget K = D + C):
``features`` (K, W) are exactly the K rows the LLM receives, CLS first; ``indices`` (K,)
name their sources in the same order: :data:`CLS_INDEX` (-1) for the CLS token, then the
dominant patches (raster order), then each contextual token's target patch. The CLS
token is not a patch, so consumers that index patch arrays with ``indices`` must drop the
-1 first (``indices[indices >= 0]``). ``parts["dominant"]`` holds ``[-1, dominant
patches]`` (the official dominant set includes CLS) and ``parts["contextual"]`` the
target patches. ``scores`` is the head-summed CLS attention the dominant tokens are ranked by.

Deviations from the official code:

1. Budgets other than 64/128/192: D = floor(K * 27/32 + 1/2) (the official ratio 54/64,
   rounded half up), at least 1 (the CLS token) and at most K; C = K - D. For 64, 128
   and 192 this gives the official 54/10, 108/20, 162/30. Where C = 0 (K <= 3) there
   are no contextual tokens; the official code would divide by zero (``R // C``).
2. The hidden states, metric and attention come from the block/layer given by
   ``inputs.feature_layer`` (default -2, the official hard-coded value; the attention and
   key block is the one that outputs that layer, -2 for layer -2).
3. None in the arithmetic: it runs in the trace's dtype, as the official code runs in the
   vision tower's (fp16 in LLaVA's evaluation, bf16 in GLaMM's), and the CLS attention is
   computed by the official statements (``attention="official"``, the default:
   :func:`~litelvlm.pruning.scores.eager_cls_attention`, the full ``bmm`` and softmax in that
   dtype), so ties in ``topk``/``argmax`` fall as in the official code on the same device.
   ``attention="project"`` is the earlier computation (one float32 row, cast): it rounds
   differently and so can swap two near-equal attentions at the top-k boundary, which shifts
   every later contextual target (e.g. K = 379 on a real image with ``vit-l-14-336-random``).
"""

from __future__ import annotations

import torch

from ..method import Method
from ..pruning.scores import cls_attention_rows
from ..pruning.selection import Selection, SelectorInputs

#: The official dominant share: 54 of 64 tokens (108/128, 162/192).
DOMINANT_SHARE = 54 / 64

#: The entry of ``Selection.indices`` that stands for the CLS token (not a patch).
CLS_INDEX = -1


def split_budget(budget: int, dominant_share: float = DOMINANT_SHARE) -> tuple[int, int]:
    """(dominant D incl. CLS, contextual C) for K tokens: D = floor(K * share + 1/2) in [1, K]."""
    n_dom = min(budget, max(1, int(budget * dominant_share + 0.5)))
    return n_dom, budget - n_dom


def dominant_split(attn: torch.Tensor, count: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(dominant, remaining) token indices, each ascending (sequence order): the top ``count`` by ``attn``
    (N,) and the others (``clip_encoder.py`` L49-57, the mask over the patches)."""
    top = attn.topk(count).indices
    is_dom = torch.zeros(attn.shape[0], dtype=torch.bool, device=attn.device)
    is_dom[top] = True
    return is_dom.nonzero().squeeze(1), (~is_dom).nonzero().squeeze(1)


def contextual_tokens(hidden: torch.Tensor, metric: torch.Tensor, remaining: torch.Tensor,
                      count: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(targets, contextual tokens (C, W)): the ``remaining`` tokens (ascending) merged into ``count`` targets
    (``clip_encoder.py`` L59-80): ``metric`` (N, d) over the tokens, normalised; targets every ``max(1, R //
    C)``-th remaining token; each other one assigned to the target of highest cosine; target + mean of its
    assigned ``hidden`` (N, W) rows."""
    device = hidden.device
    metric = metric[remaining]
    metric = metric / metric.norm(dim=-1, keepdim=True)
    step = max(1, metric.shape[0] // count)
    target_pos = torch.arange(0, metric.shape[0], step, device=device)[:count]
    is_target = torch.zeros(metric.shape[0], dtype=torch.bool, device=device)
    is_target[target_pos] = True
    targets = remaining[target_pos]
    assign = (metric[~is_target] @ metric[target_pos].T).argmax(dim=-1)  # (R - C,)
    merge_hidden = hidden[remaining[~is_target]]
    one_hot = torch.zeros(assign.shape[0], count, dtype=hidden.dtype, device=device)
    one_hot[torch.arange(assign.shape[0], device=device), assign] = 1
    counts = one_hot.sum(0).clamp(min=1)[:, None]
    aggregated = one_hot.T @ merge_hidden / counts
    return targets, hidden[targets] + aggregated


def visionzip(inputs: SelectorInputs, budget: int, *, dominant_share: float = DOMINANT_SHARE,
              attention_block: int | None = None, attention: str = "official") -> Selection:
    vision = inputs.vision
    if vision.num_prefix_tokens != 1:
        vision.cls(0)  # raises the "no CLS token" error where there is none
        raise ValueError(f"VisionZip expects exactly one prefix (CLS) token, got {vision.num_prefix_tokens}")
    layer = vision.layer_index(inputs.feature_layer)
    if attention_block is None:  # the official code takes attentions[-2], layers[-2] with hidden_states[-2]
        attention_block = layer - 1
        if attention_block < 0:
            raise ValueError(f"feature layer {inputs.feature_layer} is the embedding output; "
                             "VisionZip needs the attention of the block that produced it")
    n_dom, n_ctx = split_budget(budget, dominant_share)
    hidden = vision.hidden_states[layer][inputs.image_index]  # (S, W), CLS first
    device = hidden.device

    # dominant: CLS + the top D-1 patches by head-summed CLS attention, in sequence order
    attn = cls_attention_rows(inputs, attention_block, attention).sum(0)  # (N,)
    dominant, remaining = dominant_split(attn, n_dom - 1)
    out = [hidden[:1], hidden[1:][dominant]]

    targets = remaining[:0]
    if n_ctx > 0:
        _, k, _ = vision.qkv(attention_block)
        heads = vision.backend.vision_heads
        k = k[inputs.image_index]
        metric = k.reshape(k.shape[0], heads, -1).mean(1)[1:]  # (N, W/H): keys averaged over heads
        targets, contextual = contextual_tokens(hidden[1:], metric, remaining, n_ctx)
        out.append(contextual)

    cls = torch.full((1,), CLS_INDEX, dtype=torch.long, device=device)
    idx = torch.cat([cls, dominant, targets])
    return Selection(indices=idx, features=torch.cat(out), scores=attn,
                     parts={"dominant": torch.cat([cls, dominant]), "contextual": targets})

VISIONZIP = Method("clip", visionzip, ranks=True, original_positions=False, tower_attention_weights=True,
                   name="visionzip",
                   description="VisionZip: dominant [CLS]-attention tokens + merged contextual tokens")
