"""``litelvlm efficiency``: FLOPs, prefill time, CUDA time and activation memory per method and budget.

``options`` (light: :class:`EfficiencyArgs`, :func:`run`), ``compute`` (the command), ``arch`` (presets of
``litelvlm.glamm.config.ARCHS`` and the prompt length), ``build`` (the random pipeline and the per-image
steps), ``parts`` (one grounding call as measurable parts), ``flops`` (token schedules and the analytic
counts), ``meta`` (counting on ``meta``; selectors on true shapes), ``count`` (the FLOPs rows), ``timing``,
``layer_timer`` and ``measure`` (the timing rows), ``compare`` and ``paper`` (ratios and the paper's
numbers), ``family`` and ``plots`` (its figures). From code: ``from analysis.efficiency import EfficiencyArgs, run``.
"""

from analysis.efficiency.options import EfficiencyArgs, run

__all__ = ["EfficiencyArgs", "run"]
