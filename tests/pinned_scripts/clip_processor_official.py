"""VideoGLaMM's CLIP pixels as transformers 4.41.0 (VideoGLaMM's pin) makes them; run by
``tests/pinned_env.run_pinned``. Imports the pinned packages only.

mbzuai-oryx/VideoGLaMM @6b15b1e ``VideoGLaMM/utils/enc_preprocessors.py`` L28-30:
``CLIPImageProcessor.from_pretrained("openai/clip-vit-large-patch14-336")`` (the slow class, named). The hub
is out of reach here, so the processor is built from that repository's ``preprocessor_config.json`` values,
written out below; each frame (uint8 H x W x 3, as a PIL image) goes through ``preprocess`` one by one, as
L152 calls it (``context_images``).

usage: clip_processor_official.py CASES.pt OUT.pt
"""

import sys

import torch
from PIL import Image
from transformers import CLIPImageProcessor

from results import save  # tests/pinned_scripts/results.py (on the path: run_pinned)

#: openai/clip-vit-large-patch14-336 ``preprocessor_config.json``
PREPROCESSOR = {"crop_size": 336, "do_center_crop": True, "do_normalize": True, "do_resize": True,
                "image_mean": [0.48145466, 0.4578275, 0.40821073],
                "image_std": [0.26862954, 0.26130258, 0.27577711], "resample": 3, "size": 336}


def main(cases, out) -> None:
    processor = CLIPImageProcessor(**PREPROCESSOR)
    results = []
    for frames in torch.load(cases, weights_only=False):
        try:
            results.append(torch.stack([processor.preprocess(Image.fromarray(f), return_tensors="pt")[
                "pixel_values"][0] for f in frames]))                                 # L152
        except ValueError as e:   # what the official stack raises, handed back
            results.append(f"{type(e).__name__}: {e}")
    save(out, results)


if __name__ == "__main__":
    main(*sys.argv[1:])
