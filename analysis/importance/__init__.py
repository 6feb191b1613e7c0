"""``litelvlm importance``: CLIP's token ranks against the LLM's own token importance.

``options`` (light: :class:`ImportanceArgs`), ``command`` (:func:`run`: checks, then the heavy import),
``compute`` (the study), ``signals`` (every signal on any family's pipeline), ``correlation`` (rank
statistics), ``sensitivity`` (mask-IoU drop of removed token groups), ``aggregate`` (bootstrap summaries),
``figure_set`` and ``plots`` (its figures). From code: ``from analysis.importance import ImportanceArgs,
run``.
"""

from analysis.importance.command import run
from analysis.importance.options import ImportanceArgs

__all__ = ["ImportanceArgs", "run"]
