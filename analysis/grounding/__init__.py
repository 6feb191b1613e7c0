"""``litelvlm eval-grounding``: RefCOCO referring segmentation (cIoU/gIoU) per method and budget.

``options`` (light: :class:`GroundingArgs`), ``command`` (:func:`run`: checks, then the heavy import),
``compute`` (the evaluation), ``figure_set`` and ``plots`` (its figures). From code: ``from analysis.grounding
import GroundingArgs, run``.
"""

from analysis.grounding.command import run
from analysis.grounding.options import GroundingArgs

__all__ = ["GroundingArgs", "run"]
