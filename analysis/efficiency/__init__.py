"""``litelvlm efficiency``: FLOPs, prefill time, CUDA time and activation memory per method and budget.

``options`` (light: :class:`EfficiencyArgs`), ``command`` (:func:`run`: checks, then the heavy import), ``compute`` (the command), ``arch`` (a family's
preset and the prompt length), ``build`` (GLaMM's random pipeline and per-image steps), ``parts`` (one grounding
call as measurable parts), ``unipixel`` and ``unipixel_parts`` (the same for the unipixel family), ``flops`` (token schedules and the analytic
counts), ``meta`` (counting on ``meta``; selectors on true shapes), ``count`` (the FLOPs rows), ``timing``,
``layer_timer`` and ``measure`` (the timing rows), ``compare`` and ``paper`` (ratios and the paper's
numbers), ``family`` and ``plots`` (its figures). From code: ``from analysis.efficiency import EfficiencyArgs, run``.
"""

from analysis.efficiency.command import run
from analysis.efficiency.options import EfficiencyArgs

__all__ = ["EfficiencyArgs", "run"]
