"""``litelvlm demo``: the two CLIP studies on the bundled toy CLIP and synthetic scenes, with figures.

``options`` (light: :class:`DemoArgs`), ``command`` (:func:`run`: checks, then the heavy import), ``compute``
(the run) and ``plots`` (its figures). From code: ``from analysis.demo import DemoArgs, run``.
"""

from analysis.demo.command import run
from analysis.demo.options import DemoArgs

__all__ = ["DemoArgs", "run"]
