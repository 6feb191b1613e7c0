"""The video package: referring video object segmentation. Readers for the released layouts of
Ref-DAVIS-17, Refer-YouTube-VOS and MeViS (one record per referring expression, frames and ground-truth
masks loaded lazily; ``litelvlm.video.datasets``), this project's own synthetic set of moving toy shapes in
the Ref-DAVIS layout for offline tests and demos (``litelvlm.video.synthetic``), and J&F as the official
DAVIS 2017 evaluation computes it, with the MeViS protocol as an option (``litelvlm.video.metrics``, see
docs/video.md). The per-frame pipeline (VideoGLaMM) is to come.
"""
