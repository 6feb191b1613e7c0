"""CLIP-side token selection: what a selector reads and returns, and ``select("litelvlm", inputs, K)``.

The methods themselves are modules of :mod:`litelvlm.methods`.
"""

from ..methods import available_methods, get_method
from .features import visual_features
from .mapped import MappedInputs
from .scores import cls_attention_mean, context_scores, similarity
from .selection import Selection, SelectorInputs, check_budget, select

__all__ = ["MappedInputs", "Selection", "SelectorInputs", "available_methods", "check_budget", "get_method", "select",
           "visual_features", "similarity", "context_scores", "cls_attention_mean"]
