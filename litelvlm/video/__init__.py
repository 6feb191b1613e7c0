"""The video package: referring video object segmentation. Readers for the released layouts of
Ref-DAVIS-17, Refer-YouTube-VOS and MeViS (one record per referring expression, frames and ground-truth
masks loaded lazily; ``litelvlm.video.datasets``) and this project's own synthetic set of moving toy
shapes in the Ref-DAVIS layout for offline tests and demos (``litelvlm.video.synthetic``)."""
