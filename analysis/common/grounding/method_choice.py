"""Which methods a study runs on a loaded pipeline: named ones checked before anything is written (the
family's refusal, a layer option the model's decoder lacks), or by default every registered method the family
runs whose layer options fit the model, the others left out with a warning that names why."""

from __future__ import annotations

from collections.abc import Callable

from litelvlm.lvlm.method_plan import planned_methods, refusals
from litelvlm.methods import available_methods, get_method


def study_methods(pipe, given: list[str], args, keep: Callable[[str], bool] = lambda m: True) -> list[str]:
    """``given`` (refused, all reasons in one :class:`~litelvlm.errors.LiteLVLMError`, where any cannot run),
    or by default every registered method but the baselines that ``pipe``'s family runs and ``keep`` accepts,
    less those whose layer options the model lacks (each left out with a warning: IPCV + FastV's official
    layer 3 on a 2-layer tiny model); the rule of :mod:`litelvlm.lvlm.method_plan`."""
    candidates = given or [m for m in available_methods()
                           if not get_method(m).baseline and pipe.method_error(m) is None and keep(m)]
    return planned_methods(given, candidates, refusals(pipe, candidates, args))


__all__ = ["study_methods"]
