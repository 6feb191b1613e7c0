"""A family's token schedule for the efficiency study: :func:`token_plan` of a preset (:class:`EffArch`); the
counts themselves, shared with ``validate``, are in :mod:`analysis.common.flops`."""

from __future__ import annotations

from analysis.common.flops import TokenPlan, schedule_plan
from analysis.efficiency.arch import EffArch


def token_plan(arch: EffArch, method: str, budget: int, fastv_layer: int = 2) -> TokenPlan:
    """The token schedule of ``method`` at visual budget ``budget``, as the method declares it
    (``Method.schedule``; ``fastv_layer`` feeds the methods whose option ``--fastv-layer`` sets): CLIP-side
    methods and DivPrune feed K tokens to layer 0, FastV and DART prune once inside the LLM, SparseVLM at its
    official layers. The plan names the method when the method itself must run to realise it (its selection
    happens with the LLM), not for CLIP-side methods or the unpruned baseline."""
    return schedule_plan(method, budget, arch.num_patches, arch.llm.llm_layers, arch.text_tokens, fastv_layer,
                         spec=arch.spec(method))
