"""``litelvlm plan``: the paper's tables as runs on the data a user has, their time estimated on this machine,
and the ``torch.distributed.run`` commands that fill one results tree. ``options`` (light: :class:`PlanArgs`),
``command`` (:func:`run`), ``layouts`` (the data found), ``compute`` (runs, calibration, commands, plan
files). From code: ``from analysis.plan import PlanArgs, run``.
"""

from analysis.plan.command import run
from analysis.plan.options import PlanArgs

__all__ = ["PlanArgs", "run"]
