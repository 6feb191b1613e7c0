"""``litelvlm validate``: one real image through a full pruned model (GLaMM, UniPixel), every method and
budget the family runs, with checks.

``options`` (light: :class:`ValidateArgs`), ``command`` (:func:`run`: checks, then the heavy import),
``compute`` (the run), ``inputs`` (the methods, prompt and budgets of the image), ``measure`` (time and memory
probes), ``weights`` (the modules whose weights make the model), ``memory`` (the memory table and its claims),
``report`` (the table, ratios and report). From code: ``from analysis.validate import ValidateArgs, run``.
"""

from analysis.validate.command import run
from analysis.validate.options import ValidateArgs

__all__ = ["ValidateArgs", "run"]
