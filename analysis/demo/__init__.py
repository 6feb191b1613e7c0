"""``litelvlm demo``: the two CLIP studies on the bundled toy CLIP and synthetic scenes, with figures.

``options`` (light: :class:`DemoArgs`, :func:`run`), ``compute`` (the run) and ``plots`` (its figures).
From code: ``from analysis.demo import DemoArgs, run``.
"""

from analysis.demo.options import DemoArgs, run

__all__ = ["DemoArgs", "run"]
