"""Per-frame budget allocation for VideoGLaMM's per-frame pruning (this project's own idea; no official code).

Turns a per-frame budget K and per-frame weights into the 16 context frames' budgets, keeping the clip's
total 16 K.

Details: docs/video.md (``litelvlm.videoglamm.allocation``).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch

from ..errors import LiteLVLMError
from ..pruning.scores import similarity
from ..video.runner import FRAME_PATCHES
from .config import NUM_FRAMES
from .pruning import frame_inputs

#: CLIP tokens of a frame (the 24 x 24 grid) and the grid side
NUM_PATCHES, SIDE = FRAME_PATCHES, math.isqrt(FRAME_PATCHES)


def _check(weights: Sequence[float], frames: int) -> list[float]:
    w = [float(x) for x in weights]
    if len(w) != frames or any(not math.isfinite(x) or x < 0 for x in w) or sum(w) <= 0:
        raise LiteLVLMError(f"per-frame weights must be {frames} finite non-negative numbers, not all zero; "
                            f"got {w}")
    total = sum(w)
    return [x / total for x in w]


def targets(weights: Sequence[float], total: int, cap: int = NUM_PATCHES) -> list[float]:
    """Real-valued shares of ``total`` proportional to ``weights``, at most ``cap`` each: the frames above the
    cap are capped and the rest is shared again among the others by weight (equally where their weights are
    all zero)."""
    w = _check(weights, len(weights))
    n = len(w)
    if not n <= total <= n * cap:
        raise LiteLVLMError(f"a total of {total} tokens cannot be shared by {n} frames of 1..{cap} tokens")
    capped: set[int] = set()
    while True:  # water filling
        free = [i for i in range(n) if i not in capped]
        left, mass = total - cap * len(capped), sum(w[i] for i in free)
        share = {i: (left * w[i] / mass if mass > 0 else left / len(free)) for i in free}
        over = {i for i in free if share[i] > cap}
        if not over:
            return [float(cap) if i in capped else share[i] for i in range(n)]
        capped |= over


def integer_budgets(weights: Sequence[float], total: int, cap: int = NUM_PATCHES) -> list[int]:
    """Budgets summing to ``total``, each in 1..``cap``, proportional to ``weights`` (docs/video.md)."""
    exact = [max(t, 1.0) for t in targets(weights, total, cap)]
    n = len(exact)
    out = [min(cap, math.floor(x)) for x in exact]
    order = sorted(range(n), key=lambda i: (-(exact[i] - math.floor(exact[i])), i))
    step = 1 if sum(out) < total else -1
    while sum(out) != total:  # top up by the largest remainders (or take back from the smallest)
        for i in (order if step > 0 else order[::-1]):
            if sum(out) == total:
                break
            if 1 <= out[i] + step <= cap:
                out[i] += step
    return out


def square_budgets(weights: Sequence[float], total: int, side_cap: int = SIDE) -> list[int]:
    """Square budgets (s_f^2, 1 <= s_f <= ``side_cap``) near the :func:`targets` whose sum is at most
    ``total``."""
    target = targets(weights, total, side_cap * side_cap)
    sides = [min(side_cap, max(1, math.isqrt(int(t)))) for t in target]
    # the frames raised to one token pushed it over: shrink the largest excess
    while sum(s * s for s in sides) > total:
        shrink = max((i for i in range(len(sides)) if sides[i] > 1),
                     key=lambda i: (sides[i] ** 2 - target[i], -i))
        sides[shrink] -= 1
    while True:
        room = total - sum(s * s for s in sides)
        grow = [i for i in range(len(sides)) if sides[i] < side_cap and 2 * sides[i] + 1 <= room]
        if not grow:
            return [s * s for s in sides]
        best = max(grow, key=lambda i: (target[i] - sides[i] ** 2, -i))
        sides[best] += 1


def frame_allocation(weights: Sequence[float], budget: int, arrangement: str,
                     frames: int = NUM_FRAMES) -> list[int]:
    """The ``frames`` budgets of per-frame budget ``budget`` shared by ``weights``: integers for ``direct``,
    squares for the pooling arrangements (docs/video.md)."""
    total = budget * frames
    if arrangement == "direct":
        return integer_budgets(weights, total)
    return square_budgets(weights, total)


@torch.no_grad()
def relevance_weights(trace, text, logit_scale: float) -> list[float]:
    """CLIP's retrieval of the frames by the text: softmax over frames of ``logit_scale`` x each frame's
    largest cosine similarity between the text embedding and its projected layer -2 patches."""
    frames = trace.hidden_states[0].shape[0]
    best = torch.stack([similarity(frame_inputs(trace, text, f), kind="cosine")[0].float().max()
                        for f in range(frames)])
    return torch.softmax(float(logit_scale) * best, dim=0).tolist()


def clip_logit_scale(clip) -> float:
    """The paired CLIP backend's learned temperature ``exp(logit_scale)`` (transformers' ``CLIPModel`` and
    open_clip's ``CLIP`` both keep it)."""
    return float(clip.model.logit_scale.detach().float().exp())


__all__ = ["clip_logit_scale", "frame_allocation", "integer_budgets", "relevance_weights",
           "square_budgets", "targets"]
