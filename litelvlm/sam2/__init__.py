"""SAM 2 as the grounding LVLMs of this project use it, on transformers' ``Sam2Model`` / ``Sam2VideoModel``.

One place for what every SAM 2-headed family shares: the architecture sizes and their transformers configs
(:mod:`.config`), the official tensor names and the tracking tensors' shapes (:mod:`.keys`), the image path
prompted by tokens appended to the sparse prompt embeddings (:mod:`.prompt`), and the video model with its
memory encoding (:mod:`.video`, over :mod:`litelvlm.video.sam2_propagation`). A family's package keeps only
its own settings (its SAM 2 version, its input transform, its edits). Importing this package is light.
"""

from __future__ import annotations

from .config import SAM2_SIZES, Sam2Size, sam2_config, sam2_size

__all__ = ["SAM2_SIZES", "Sam2Size", "sam2_config", "sam2_size"]
