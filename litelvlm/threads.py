"""The one place that decides torch's intra-op thread count.

Small models (the tiny random ones, the bundled toy CLIP) run fastest on ONE thread: their
matrices are too small to split, and a second thread only fights the other processes of a
shared machine (measured 13-25x slower on 2 busy cores). Full-size models use torch's own
default, the number of physical cores. ``litelvlm COMMAND --threads N`` overrides both; the
count a run used is recorded in its ``config.json`` (``torch_threads``).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from .errors import LiteLVLMError


def is_small_model(model: str | None) -> bool:
    """True for the bundled toy CLIP (``None``) and ``tiny*`` model strings (random or toy weights)."""
    if model is None:
        return True
    name = str(model).rsplit("/", 1)[-1].lower()
    return name.startswith("tiny") or "toy" in name


def default_threads(model: str | None) -> int:
    """1 for a small model, else torch's default (the physical cores)."""
    import torch

    return 1 if is_small_model(model) else torch.get_num_threads()


@contextlib.contextmanager
def torch_threads(n: int | None) -> Iterator[int]:
    """Within the block torch uses ``n`` intra-op threads (None: unchanged); restored afterwards."""
    import torch

    if n is not None and n < 1:
        raise LiteLVLMError(f"--threads must be >= 1; got {n}")
    prev = torch.get_num_threads()
    try:
        if n is not None:
            torch.set_num_threads(n)
        yield torch.get_num_threads()
    finally:
        torch.set_num_threads(prev)
