"""CLIP-side token selection: what a selector reads (:class:`SelectorInputs`, :class:`MappedInputs`) and
returns (:class:`Selection`), and the scores the methods share.

The methods themselves, and ``select("litelvlm", inputs, K)`` by name, are in :mod:`litelvlm.methods`.
"""

from .mapped import MappedInputs
from .run import run_selector
from .scores import cls_attention_mean, context_scores, similarity
from .selection import Selection, SelectorInputs, check_budget

__all__ = ["MappedInputs", "Selection", "SelectorInputs", "check_budget", "run_selector", "similarity",
           "context_scores", "cls_attention_mean"]
