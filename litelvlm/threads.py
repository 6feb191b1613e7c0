"""The one place that decides torch's intra-op thread count.

Small models (the tiny random ones, the bundled toy CLIP) run fastest on ONE thread: their
matrices are too small to split, and a second thread only fights the other processes of a
shared machine (measured 13-25x slower on 2 busy cores). Full-size models use torch's own
default, the number of physical cores. ``litelvlm COMMAND --threads N`` overrides both; the
count a run used is recorded in its ``config.json`` (``torch_threads``).

Setting the count does not import torch: when torch is not imported yet, the count goes into
``OMP_NUM_THREADS``/``MKL_NUM_THREADS``, which torch reads when it is first imported, so a
command that fails on a bad argument never pays torch's import.
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Iterator

from .errors import LiteLVLMError
from .models.model_spec import ModelSpec
from .registry.families import is_small

_ENV = ("OMP_NUM_THREADS", "MKL_NUM_THREADS")


def is_small_model(model: str | None) -> bool:
    """True for the bundled toy CLIP (``None``), ``tiny*`` model strings (random or toy weights) and a
    family's small random presets (its card's ``small_presets``)."""
    return model is None or ModelSpec.of(model).is_small or is_small(model)


def default_threads(model: str | None) -> int | None:
    """1 for a small model, else None (torch's default: the physical cores)."""
    return 1 if is_small_model(model) else None


@contextlib.contextmanager
def torch_threads(n: int | None) -> Iterator[int | None]:
    """Within the block torch uses ``n`` intra-op threads (None: unchanged); restored afterwards.
    Yields the count in force (None when torch is not imported and ``n`` is None)."""
    if n is not None and n < 1:
        raise LiteLVLMError(f"--threads must be >= 1; got {n}")
    if "torch" not in sys.modules:  # torch will read the count from the environment when imported
        saved = {k: os.environ.get(k) for k in _ENV}
        try:
            if n is not None:
                os.environ.update({k: str(n) for k in _ENV})
            yield n
        finally:
            for k, v in saved.items():
                if v is None:
                    os.environ.pop(k, None)
                else:
                    os.environ[k] = v
        return
    torch = sys.modules["torch"]   # imported already: the branch above is the other case
    prev = torch.get_num_threads()
    try:
        if n is not None:
            torch.set_num_threads(n)
        yield torch.get_num_threads()
    finally:
        torch.set_num_threads(prev)
