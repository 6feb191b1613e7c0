"""Token selectors, registered by name: ``select("litelvlm", inputs, K)``."""

from .features import visual_features
from .registry import (
    Selection,
    SelectorInputs,
    SelectorSpec,
    available_methods,
    check_budget,
    get_method,
    register_llm_method,
    register_selector,
    select,
)
from .scores import cls_attention_mean, context_scores, similarity

__all__ = ["Selection", "SelectorInputs", "SelectorSpec", "available_methods", "check_budget", "get_method",
           "register_llm_method", "register_selector", "select", "visual_features", "similarity",
           "context_scores", "cls_attention_mean"]
