"""CLIP's per-patch scores on another family's visual tokens (this project's adaptation, not in any official
code).

A family whose visual tokens are not CLIP's patches (UniPixel's 2x2-merged Qwen2.5-VL tokens at native
resolution) pairs an external CLIP run on the same image with a map ``weights`` (N, P) from CLIP's P patches
to its N tokens: token ``n``'s score is the weighted mean of the patch scores its box overlaps
(:func:`litelvlm.qwen_vision.grid.resample_matrix`, the area rule of ``resample_to_grid``). The methods that
read only per-token scores and the token count (``Method.scores_only``: LiteLVLM's similarity and context
parts, its ablations, random) select among the family's N tokens through :class:`MappedInputs`, unchanged:
:mod:`litelvlm.pruning.patch_scores` computes each score on CLIP's grid, in the trace's dtype as on GLaMM, and
:meth:`MappedInputs.map` maps it.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from .patch_scores import patch_context, patch_similarity
from .selection import SelectorInputs


@dataclass
class MappedInputs:
    """What a ``scores_only`` method reads on a family's own tokens: CLIP's trace and the map onto the
    tokens."""

    clip: SelectorInputs            # the external CLIP's vision and text traces of this image and its texts
    weights: torch.Tensor           # (N, P) float64: CLIP patch p's share in family token n (rows sum to 1)
    #: (N,) a context score computed on the family's own tokens (None: CLIP's context score, mapped)
    context_override: torch.Tensor | None = None
    #: (T, N) a similarity computed on the family's own tokens (None: CLIP's patch-text similarity, mapped)
    similarity_override: torch.Tensor | None = None

    def __post_init__(self) -> None:
        n_clip = self.clip.num_patches
        if self.weights.dim() != 2 or self.weights.shape[1] != n_clip:
            raise ValueError(f"weights must be (N, {n_clip}) for CLIP's {n_clip} patches; got "
                             f"{tuple(self.weights.shape)}")

    @property
    def num_patches(self) -> int:
        """N: the family's visual tokens (what a budget counts)."""
        return int(self.weights.shape[0])

    @property
    def seed(self) -> int:
        return self.clip.seed

    @property
    def text(self):
        return self.clip.text

    @property
    def feature_layer(self) -> int:
        return self.clip.feature_layer

    @property
    def device(self) -> torch.device:
        return self.clip.device

    def map(self, scores: torch.Tensor) -> torch.Tensor:
        """(..., P) scores on CLIP's patches -> (..., N) float64 on the family's tokens."""
        return scores.to(self.weights.device, torch.float64) @ self.weights.T

    def similarity(self, layer: int = -2, kind: str = "dot") -> torch.Tensor:
        """(T, N) the override, or CLIP's patch-text similarity
        (:func:`litelvlm.pruning.patch_scores.patch_similarity`) mapped onto the tokens."""
        if self.similarity_override is not None:
            return self.similarity_override.to(torch.float64)

        return self.map(patch_similarity(self.clip, layer=layer, kind=kind))

    def context(self, block: int = -1) -> torch.Tensor:
        """(N,) the context score: the override, or CLIP's
        (:func:`litelvlm.pruning.patch_scores.patch_context`) mapped."""
        if self.context_override is not None:
            return self.context_override.to(torch.float64)

        return self.map(patch_context(self.clip, block=block))


__all__ = ["MappedInputs"]
