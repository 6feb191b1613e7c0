"""A CLIP-side method's selection under the method contract's checks: on inputs it can read (CLIP's
patches, or a family's tokens through :class:`~litelvlm.pruning.mapped.MappedInputs` for a method reading
per-token scores), with the text it needs, returning K tokens. The pipeline's ``ground`` makes the same checks
around its kernel call (:mod:`litelvlm.lvlm.prune`)."""

from __future__ import annotations

from typing import Any

from ..errors import LiteLVLMError
from ..method import Method
from .mapped import MappedInputs
from .selection import Selection, SelectorInputs


def run_selector(spec: Method, inputs: SelectorInputs | MappedInputs, k: int, **options: Any) -> Selection:
    """``spec``'s selection of ``k`` tokens, K already counted (:func:`select`), after the contract's checks
    (:func:`check_selector`, :func:`checked`; the pipeline's ``ground`` makes the same two around its kernel
    call)."""
    check_selector(spec, inputs)
    return checked(spec, spec.select(inputs, k, **options), k)


def check_selector(spec: Method, inputs: SelectorInputs | MappedInputs) -> None:
    """The contract's checks before a CLIP-side selection: a CLIP-side method, on inputs it can read, with the
    text it needs."""
    method = spec.name or "this method"
    if not spec.acts_on_clip:
        raise LiteLVLMError(f"method {method!r} acts {spec.where}; use the grounding pipeline "
                            "(litelvlm.lvlm) to apply it")
    if not isinstance(inputs, SelectorInputs) and not spec.scores_only:
        raise LiteLVLMError(f"method {method!r} reads CLIP's features or attention on CLIP's own grid, so it "
                            "cannot select among another family's tokens (only methods reading per-token "
                            "scores can)")
    if spec.needs_text and (inputs.text is None or len(inputs.text.texts) == 0):
        raise LiteLVLMError(f"method {method!r} needs at least one text")


def checked(spec: Method, sel: Selection, k: int) -> Selection:
    """``sel``, the selection ``spec`` made for K = ``k``, checked to hold K tokens."""
    if sel.indices.numel() != k:
        raise AssertionError(f"{spec.name or 'this method'} returned {sel.indices.numel()} tokens for budget "
                             f"{k}")
    return sel
