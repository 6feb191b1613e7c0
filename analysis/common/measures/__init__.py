"""Measurements several studies share: CLIP's reversal, FLOPs, the paper's efficiency quantities."""
