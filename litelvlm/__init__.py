"""LiteLVLM analysis suite: CLIP backends, token selectors, a GLaMM-architecture grounding model and
studies."""

__version__ = "0.1.0"
