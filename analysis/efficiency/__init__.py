"""``litelvlm efficiency``: FLOPs, prefill time, CUDA time and activation memory per method and budget.

``options`` (light: :class:`EfficiencyArgs`), ``command`` (:func:`run`: checks, then the heavy import),
``compute`` (the command), ``scope`` (what a run measures, checked first), ``arch`` (an ``--arch`` or
``--model`` through the registry: the family's cost description, :class:`litelvlm.cost.FamilyCost`, which
declares its presets, token plan, parts' FLOPs and activation and the parts it times), ``flops`` (an arch's
token schedule), ``count`` (the FLOPs rows), ``measure`` (the timing rows), ``compare`` (ratios and the
paper's numbers beside ours), ``figure_set`` and ``plots`` (its figures). It names no family. From code:
``from analysis.efficiency import EfficiencyArgs, run``. Shared with ``validate``, in ``analysis.common``:
``flops`` (the analytic counts), ``layer_timer``, ``paper_efficiency`` (the paper's definitions and numbers,
keyed by method), ``markdown_table`` and ``device``.
"""

from analysis.efficiency.command import run
from analysis.efficiency.options import EfficiencyArgs

__all__ = ["EfficiencyArgs", "run"]
