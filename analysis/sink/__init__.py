"""Study 2, ``litelvlm sink``: the [EOS]->[SOS] attention sink of CLIP's text encoder, and its ablation.

``options`` (light: :class:`SinkArgs`), ``command`` (:func:`run`: checks, then the heavy import), ``compute``
and ``text_ablation`` (the study), ``figure_set`` and ``plots`` (its figures). From code: ``from analysis.sink
import SinkArgs, run``.
"""

from analysis.sink.command import run
from analysis.sink.options import SinkArgs

__all__ = ["SinkArgs", "run"]
