"""Which methods a run plans on a loaded model: the one rule of every study and every video path.

Named methods are refused together, before anything is written, where any cannot run: the family's reason,
or a decoder-layer option (its default where the run gives none) outside the model's LLM (IPCV + DART's
official layer 3 on a 2-layer tiny model). By default the candidates that can run are planned and each other
is left out with a warning that names it and why.
"""

from __future__ import annotations

import logging
from types import SimpleNamespace
from typing import Any

from ..errors import LiteLVLMError

log = logging.getLogger(__name__)


def layer_refusals(pipe: Any, methods: list[str], args: Any = None) -> dict[str, str]:
    """{method: why} for each of ``methods`` whose decoder-layer options (``args``' values, their defaults
    where ``args`` is None or gives none) lie outside ``pipe``'s LLM."""
    layers = int(pipe.language_model.config.num_hidden_layers)
    args = SimpleNamespace() if args is None else args
    return {m: "; ".join(errors) for m in methods if (errors := pipe.spec(m).layer_errors(args, layers))}


def refusals(pipe: Any, methods: list[str], args: Any = None) -> dict[str, str]:
    """{method: why} for each of ``methods`` that cannot run on ``pipe``: the family's reason, else its
    :func:`layer_refusals`."""
    out = {}
    for m in methods:
        if why := pipe.method_error(m) or layer_refusals(pipe, [m], args).get(m):
            out[m] = why
    return out


def planned_methods(given: list[str], candidates: list[str], refused: dict[str, str]) -> list[str]:
    """``given`` (one :class:`~litelvlm.errors.LiteLVLMError` with every reason, each once, where ``refused``
    names any of them), or ``candidates`` less those ``refused`` names, each left out with a warning."""
    if given:
        if bad := list(dict.fromkeys(refused[m] for m in given if m in refused)):
            raise LiteLVLMError("; ".join(bad))
        return list(given)
    for m in candidates:
        if m in refused:
            log.warning("%s left out of the default methods: %s", m, refused[m])
    return [m for m in candidates if m not in refused]


__all__ = ["layer_refusals", "planned_methods", "refusals"]
