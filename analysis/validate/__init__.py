"""``litelvlm validate``: one real image through the full pruned GLaMM, every method and budget, with checks.

``options`` (light: :class:`ValidateArgs`, :func:`run`), ``compute`` (the run), ``measure`` (time and
memory probes), ``memory`` (the memory table and its claims), ``report`` (the table, ratios and report).
From code: ``from analysis.validate import ValidateArgs, run``.
"""

from analysis.validate.options import ValidateArgs, run

__all__ = ["ValidateArgs", "run"]
