"""A family's token schedule for the efficiency study: :func:`token_plan` of an arch; the counts themselves,
shared with ``validate``, are in :mod:`analysis.common.measures.flops`."""

from __future__ import annotations

from typing import Any

from analysis.efficiency.arch import cost_of
from litelvlm.cost import CostArch
from litelvlm.cost.tokens import TokenPlan


def token_plan(arch: CostArch, method: str, budget: int, method_args: Any = None) -> TokenPlan:
    """The token schedule of ``method`` at visual budget ``budget``, as the method declares it
    (``Method.schedule``; its options read from ``method_args`` by ``Method.options_from``, its defaults
    without them)."""
    return cost_of(arch).plan(arch, (method, budget), method_args)
