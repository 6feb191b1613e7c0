"""Study 1, ``litelvlm reversal``: does CLIP's patch-text similarity rank the referent low?

``options`` (light: :class:`ReversalArgs`, :func:`run`), ``compute`` (the study), ``family`` and ``plots``
(its figures). From code: ``from analysis.reversal import ReversalArgs, run; run(ReversalArgs(...))``.
"""

from analysis.reversal.options import ReversalArgs, run

__all__ = ["ReversalArgs", "run"]
