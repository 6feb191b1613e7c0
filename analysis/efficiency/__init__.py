"""``litelvlm efficiency``: FLOPs, prefill time, CUDA time and activation memory per method and budget.

``options`` (light: :class:`EfficiencyArgs`), ``command`` (:func:`run`: checks, then the heavy import), ``compute`` (the command), ``arch`` (a family's
preset and the prompt length), ``build`` (GLaMM's random pipeline and per-image steps), ``parts`` (one grounding
call as measurable parts), ``unipixel`` and ``unipixel_parts`` (the same for the unipixel family), ``flops`` (a preset's token schedule), ``meta`` (counting on ``meta``; selectors on true shapes), ``count`` (the FLOPs rows), ``timing``
and ``measure`` (the timing rows), ``compare`` (ratios and the paper's numbers beside ours), ``family`` and ``plots`` (its figures). From code: ``from analysis.efficiency import EfficiencyArgs, run``. Shared with ``validate``, in
``analysis.common``: ``flops`` (the analytic counts), ``layer_timer``, ``paper_efficiency`` (the paper's
definitions and numbers), ``markdown_table`` and ``device``.
"""

from analysis.efficiency.command import run
from analysis.efficiency.options import EfficiencyArgs

__all__ = ["EfficiencyArgs", "run"]
