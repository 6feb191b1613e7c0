"""The scene sets a toy-train run renders up front: their seeds, the uint8 pixels at model
resolution, attribute-only copies of the scenes, and the model's input normalisation."""

from __future__ import annotations

import dataclasses

import numpy as np
import torch
from PIL import Image
from tqdm.auto import tqdm

from ..models.channel_stats import OPENAI_CLIP_MEAN, OPENAI_CLIP_STD
from .scenes import Scene, make_scene

#: scene seeds: training scenes, held-out evaluation scenes, demo scenes never overlap
TRAIN_SEED = 1
HELDOUT_SEED = 2
#: one-object scenes of the position warm-up
WARMUP_SEED = 3


def _strip(scene: Scene) -> Scene:
    """The scene without its image and masks (attributes only), to keep thousands in memory."""
    empty = np.zeros((0, 0), dtype=bool)
    return dataclasses.replace(scene, image=np.zeros((0, 0, 3), np.uint8),
                               objects=tuple(dataclasses.replace(o, mask=empty) for o in scene.objects))


def render_pixels(scenes_images: list[np.ndarray], image_size: int) -> torch.Tensor:
    """uint8 (N, 3, s, s) model-resolution images (bicubic, as the image processor resizes)."""
    out = np.stack([np.asarray(Image.fromarray(im).resize((image_size, image_size), Image.BICUBIC))
                    for im in scenes_images])
    return torch.from_numpy(out).permute(0, 3, 1, 2).contiguous()


def normalise(pixels_u8: torch.Tensor) -> torch.Tensor:
    """uint8 (N, 3, H, W) -> float32 model input, OpenAI mean/std (in place on one float copy)."""
    std = torch.tensor(OPENAI_CLIP_STD).view(1, 3, 1, 1)
    scale = 1.0 / (255.0 * std)
    shift = torch.tensor(OPENAI_CLIP_MEAN).view(1, 3, 1, 1) / std
    return pixels_u8.float().mul_(scale).sub_(shift)


class _SceneRender(torch.utils.data.Dataset):
    """Scene ``i`` of a set: its uint8 (3, s, s) pixels at model resolution and its attributes."""

    def __init__(self, seed: int, render_size: int, image_size: int, n_objects: tuple[int, int] | None):
        self.seed, self.render_size, self.image_size = seed, render_size, image_size
        self.kwargs = {} if n_objects is None else {"n_objects": n_objects}  # None: make_scene's own default

    def __getitem__(self, i: int):
        s = make_scene(self.seed, i, self.render_size, **self.kwargs)
        return render_pixels([s.image], self.image_size)[0], _strip(s)


def build_scenes(seed: int, n: int, render_size: int, image_size: int, desc: str, workers: int = 0,
                 n_objects: tuple[int, int] | None = None):
    """Render scenes ``0..n-1`` of ``seed`` (in ``workers`` processes; the result does not depend on
    how many); returns (uint8 pixels at model resolution, attribute-only scenes)."""
    loader = torch.utils.data.DataLoader(
        torch.utils.data.Subset(_SceneRender(seed, render_size, image_size, n_objects), range(n)),
        batch_size=64, num_workers=workers,
        collate_fn=lambda b: (torch.stack([p for p, _ in b]), [s for _, s in b]),
        multiprocessing_context="fork" if workers else None)
    pixels, scenes = [], []
    with tqdm(total=n, desc=desc, leave=False, mininterval=5) as bar:
        for px, sc in loader:
            pixels.append(px)
            scenes.extend(sc)
            bar.update(len(sc))
    return torch.cat(pixels), scenes


def build_warmup_scenes(n: int, render_size: int, image_size: int, workers: int = 0, objects: int = 1):
    """``n`` scenes of ``objects`` objects each (seed ``WARMUP_SEED``) for the position warm-up."""
    return build_scenes(WARMUP_SEED, n, render_size, image_size, "warm-up scenes", workers,
                        n_objects=(objects, objects))
