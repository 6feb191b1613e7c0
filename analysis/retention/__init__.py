"""``litelvlm retention``: which visual tokens each method keeps, stage by stage.

``options`` (light: :class:`RetentionArgs`), ``command`` (:func:`run`: checks, then the heavy import),
``compute`` (the tables), ``figure_set`` and ``plots`` (its figures). From code: ``from analysis.retention
import RetentionArgs, run``.
"""

from analysis.retention.command import run
from analysis.retention.options import RetentionArgs

__all__ = ["RetentionArgs", "run"]
