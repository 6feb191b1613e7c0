"""Study 1, ``litelvlm reversal``: does CLIP's patch-text similarity rank the referent low?

``options`` (light: :class:`ReversalArgs`), ``command`` (:func:`run`: checks, then the heavy import),
``compute`` (the study), ``figure_set`` and ``plots`` (its figures). From code: ``from analysis.reversal
import ReversalArgs, run; run(ReversalArgs(...))``.
"""

from analysis.reversal.command import run
from analysis.reversal.options import ReversalArgs

__all__ = ["ReversalArgs", "run"]
