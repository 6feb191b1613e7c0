"""``litelvlm retention``: which visual tokens each method keeps, stage by stage.

``options`` (light: :class:`RetentionArgs`, :func:`run`), ``compute`` (the tables), ``family`` and
``plots`` (its figures). From code: ``from analysis.retention import RetentionArgs, run``.
"""

from analysis.retention.options import RetentionArgs, run

__all__ = ["RetentionArgs", "run"]
