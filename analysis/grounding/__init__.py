"""``litelvlm eval-grounding``: RefCOCO referring segmentation (cIoU/gIoU) per method and budget.

``options`` (light: :class:`GroundingArgs`, :func:`run`), ``compute`` (the evaluation), ``family`` and
``plots`` (its figures). From code: ``from analysis.grounding import GroundingArgs, run``.
"""

from analysis.grounding.options import GroundingArgs, run

__all__ = ["GroundingArgs", "run"]
