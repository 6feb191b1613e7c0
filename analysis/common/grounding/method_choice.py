"""Which methods a study runs on a loaded pipeline: named ones checked before anything is written (the
family's refusal, a layer option the model's decoder lacks), or by default every registered method the family
runs whose layer options fit the model, the others left out with a warning that names why."""

from __future__ import annotations

import logging
from collections.abc import Callable

from litelvlm.errors import LiteLVLMError
from litelvlm.methods import available_methods, get_method

log = logging.getLogger(__name__)


def refusals(pipe, methods: list[str], args) -> list[str]:
    """Why each of ``methods`` cannot run on ``pipe`` with ``args``' options: the family's reason, then each
    layer option (its default unless given) out of the decoder's range, each reason once."""
    layers = int(pipe.language_model.config.num_hidden_layers)
    errors = [why for m in methods if (why := pipe.method_error(m))]
    errors += [e for m in methods if pipe.method_error(m) is None
               for e in pipe.spec(m).layer_errors(args, layers)]
    return list(dict.fromkeys(errors))


def study_methods(pipe, given: list[str], args, keep: Callable[[str], bool] = lambda m: True) -> list[str]:
    """``given`` (refused, all reasons in one :class:`LiteLVLMError`, where any cannot run), or by default
    every registered method but the baselines that ``pipe``'s family runs and ``keep`` accepts, less those
    whose layer options the model lacks (each left out with a warning: IPCV + FastV's official layer 3 on a
    2-layer tiny model)."""
    if given:
        if errors := refusals(pipe, given, args):
            raise LiteLVLMError("; ".join(errors))
        return list(given)
    out = []
    for m in available_methods():
        if get_method(m).baseline or pipe.method_error(m) is not None or not keep(m):
            continue
        if errors := refusals(pipe, [m], args):
            log.warning("%s left out of the default methods: %s", m, "; ".join(errors))
            continue
        out.append(m)
    return out


__all__ = ["refusals", "study_methods"]
