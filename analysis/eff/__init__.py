"""Efficiency study internals, on top of the library's ``GlammPipeline``.

``arch`` (presets of ``litelvlm.glamm.config.ARCHS`` and the prompt length), ``build`` (the random
pipeline and the per-image steps), ``parts`` (one grounding call as measurable parts), ``flops``
(token schedules and the analytic counts), ``meta`` (counting on ``meta``; selectors on true shapes),
``count`` (the FLOPs rows), ``timing`` and ``measure`` (the timing rows), ``compare`` (ratios and the
paper's numbers).
"""
