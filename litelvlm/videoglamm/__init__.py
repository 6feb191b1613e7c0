"""VideoGLaMM (mbzuai-oryx/VideoGLaMM @6b15b1e): Phi-3-mini with CLIP + InternVideo2 video tokens and SAM 2.

Not registered in :mod:`litelvlm.families`: it does not implement the ``GroundingPipeline`` contract yet
(docs/videoglamm.md). Submodules import torch / transformers; this package file imports nothing heavy.
"""
