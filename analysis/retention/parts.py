"""Which part of a selection chose each kept token (LiteLVLM's similarity-aware and context-aware parts, or
any method's named parts): shared by the CLIP retention tables and the family pipeline's."""

from __future__ import annotations

import numpy as np


def selection_parts(sel, kept: np.ndarray, num_tokens: int) -> np.ndarray:
    """The name of the part of ``sel`` that chose each kept index (same order as ``kept``; ``kept`` where no
    part holds it). A part holding every one of the ``num_tokens`` tokens is a ranking (LiteLVLM's ``context``
    order): it names only what no smaller part holds, and the first ranking wins; among the smaller parts, the
    last wins."""
    part = np.full(kept.shape, "kept", dtype=object)
    full = np.arange(num_tokens)
    items = [(name, idx.cpu().numpy()) for name, idx in sel.parts.items()]
    ranking = {name for name, idx in items if np.isin(full, idx).all()}
    for name, idx in [*reversed([kv for kv in items if kv[0] in ranking]),
                      *(kv for kv in items if kv[0] not in ranking)]:
        part[np.isin(kept, idx)] = name
    return part
