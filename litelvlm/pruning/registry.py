"""Token selectors registered under string names (``"litelvlm"``, ``"random"``, ``"fastv"``, ...)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch

from ..clip.base import TextTrace, VisionTrace
from ..errors import LiteLVLMError


@dataclass
class SelectorInputs:
    """What a CLIP-side selector may read: one image's vision trace and its texts' trace."""

    vision: VisionTrace
    text: TextTrace | None = None
    image_index: int = 0
    feature_layer: int = -2
    seed: int = 0

    def patches(self, layer: int | None = None) -> torch.Tensor:
        """(N, W) patch tokens of this image at ``layer`` (default: the LLM's feature layer)."""
        return self.vision.patches(self.feature_layer if layer is None else layer)[self.image_index]


@dataclass
class Selection:
    """A selector's output: patch indices in the order the LLM receives them.

    ``features`` is set by methods that merge tokens (VisionZip, whose ``indices`` start with -1 for
    the CLS token it passes on; PruMerge, whose last index -2 is its token merging all pruned ones:
    negative indices are no patch); otherwise the LLM gets
    the feature-layer patch tokens at ``indices``. ``scores`` is the per-patch score the
    method ranked by (N,), where it has one; ``parts`` names index subsets (e.g. the
    similarity-aware and context-aware sets of LiteLVLM).
    """

    indices: torch.Tensor
    features: torch.Tensor | None = None
    scores: torch.Tensor | None = None
    parts: dict[str, torch.Tensor] = field(default_factory=dict)

    def __len__(self) -> int:
        return int(self.indices.numel())


SelectorFn = Callable[..., Selection]


@dataclass(frozen=True)
class SelectorSpec:
    """A registered method: ``kind`` is ``"clip"`` (runs before the LLM on CLIP traces) or
    ``"llm"`` (runs inside the LLM; the grounding pipeline provides it). ``extra_tokens``: tokens the
    method may add to the N patches (PruMerge's merged token), so its budget may reach N + extra_tokens."""

    name: str
    fn: SelectorFn | None
    kind: str
    needs_text: bool
    description: str
    extra_tokens: int = 0


_REGISTRY: dict[str, SelectorSpec] = {}


def register_selector(name: str, *, kind: str = "clip", needs_text: bool = False,
                      description: str = "", extra_tokens: int = 0) -> Callable[[SelectorFn], SelectorFn]:
    """Decorator: register ``fn(inputs: SelectorInputs, budget: int, **options) -> Selection``."""

    def deco(fn: SelectorFn) -> SelectorFn:
        _REGISTRY[name] = SelectorSpec(name, fn, kind, needs_text, description or (fn.__doc__ or "").strip()
                                       .split("\n")[0], extra_tokens)
        return fn

    return deco


def register_llm_method(name: str, description: str, fn: SelectorFn | None = None) -> None:
    """Registration point for methods that run inside the LLM (FastV, LLM-attention, oracles)."""
    _REGISTRY[name] = SelectorSpec(name, fn, "llm", False, description)


def available_methods(kind: str | None = None) -> list[str]:
    """Names of all registered methods (optionally of one kind), sorted."""
    _ensure_loaded()
    return sorted(n for n, s in _REGISTRY.items() if kind is None or s.kind == kind)


def get_method(name: str) -> SelectorSpec:
    """The spec registered as ``name``; an unknown name is an error that lists the known ones."""
    _ensure_loaded()
    if name not in _REGISTRY:
        raise LiteLVLMError(f"unknown method {name!r}; known methods: {', '.join(available_methods())}")
    return _REGISTRY[name]


def check_budget(budget: int, num_patches: int, extra_tokens: int = 0) -> int:
    """Validate 1 <= K <= N (+ ``extra_tokens``, for a method that adds tokens to the patches)."""
    top = num_patches + extra_tokens
    if not isinstance(budget, int) or isinstance(budget, bool) or not 1 <= budget <= top:
        what = "the number of patches" if not extra_tokens else f"{num_patches} patches + {extra_tokens} extra"
        raise LiteLVLMError(f"budget must satisfy 1 <= K <= {top} ({what}); got {budget}")
    return budget


def select(method: str, inputs: SelectorInputs, budget: int, **options: Any) -> Selection:
    """Run a registered CLIP-side selector with budget checks."""
    spec = get_method(method)
    check_budget(budget, inputs.vision.num_patches, spec.extra_tokens)
    if spec.kind != "clip" or spec.fn is None:
        raise LiteLVLMError(f"method {method!r} runs inside the LLM; use the grounding pipeline "
                            "(litelvlm.lvlm) to apply it")
    if spec.needs_text and (inputs.text is None or len(inputs.text.texts) == 0):
        raise LiteLVLMError(f"method {method!r} needs at least one text")
    sel = spec.fn(inputs, budget, **options)
    if sel.indices.numel() != budget:
        raise AssertionError(f"{method} returned {sel.indices.numel()} tokens for budget {budget}")
    return sel


#: The unpruned baseline: all N visual tokens in raster order (no selection function).
register_llm_method("none", "no pruning: all N visual tokens (the unpruned baseline)")


def _ensure_loaded() -> None:
    """Import the built-in methods once: the CLIP-side selectors and the LLM-side methods, each
    registered by the module that implements it (no placeholders)."""
    from .. import lvlm  # noqa: F401  (registers fastv, llm-attention, saliency, sparsevlm, dart)
    from . import methods  # noqa: F401  (registers the CLIP-side selectors and divprune)
