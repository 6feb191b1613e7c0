"""Video referring segmentation: the package where referring segmentation of videos (a referring
model run frame by frame, as VideoGLaMM) will live. It holds its metric today, J&F as the official
DAVIS 2017 evaluation computes it, with the MeViS protocol as an option (``litelvlm.video.metrics``,
see docs/video.md); the data readers and the per-frame pipeline are to come.
"""
