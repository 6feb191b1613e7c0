"""VideoGLaMM (mbzuai-oryx/VideoGLaMM @6b15b1e): Phi-3-mini with CLIP + InternVideo2 video tokens and SAM 2.

Registered in :mod:`litelvlm.registry.families` as the ``videoglamm`` family: its pipeline (:mod:`.pipeline`)
runs the ported inference (:mod:`.inference`) on the family contract (docs/videoglamm.md). Submodules import
torch / transformers; this package file imports nothing heavy.
"""
