"""Sa2VA-InternVL3's image protocol: the tiles the vision tower sees, their pixels, the prompt around their
tokens (bytedance/Sa2VA @ 9832e1a; the teacher-forced answer is this project's).

Details: docs/sa2va.md (`litelvlm.sa2va.internvl.tiles`).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torchvision.transforms as T
from PIL import Image
from torchvision.transforms.functional import InterpolationMode

from ...models.channel_stats import IMAGENET_MEAN, IMAGENET_STD  # InternViT's normalisation
from .config import IMG_CONTEXT, IMG_END, IMG_START, INSTRUCTION, MIN_TILES, TILE


@dataclass(frozen=True)
class TileGrid:
    """The tiles of one image: ``cols`` x ``rows`` tiles of ``tile`` px (row-major), and a thumbnail when
    there is more than one."""

    cols: int
    rows: int
    thumbnail: bool
    tile: int = TILE

    @property
    def num_tiles(self) -> int:
        """Tiles the vision tower sees (the thumbnail included)."""
        return self.cols * self.rows + int(self.thumbnail)

    @property
    def resized(self) -> tuple[int, int]:
        """(width, height) the image is resized to before it is cut."""
        return self.cols * self.tile, self.rows * self.tile


def _ratios(lo: int, hi: int) -> list[tuple[int, int]]:
    """The (cols, rows) grids of ``lo`` to ``hi`` tiles, by tile count (``dynamic_preprocess`` L806-810)."""
    grids = {(i, j) for n in range(lo, hi + 1) for i in range(1, n + 1) for j in range(1, n + 1)
             if lo <= i * j <= hi}
    return sorted(grids, key=lambda r: r[0] * r[1])


def tile_grid(width: int, height: int, max_tiles: int, min_tiles: int = MIN_TILES, tile: int = TILE,
              thumbnail: bool = True) -> TileGrid:
    """The grid ``dynamic_preprocess`` cuts a ``width`` x ``height`` image into (docs/sa2va.md, step 1)."""
    aspect = width / height
    best, best_diff, area = (1, 1), float("inf"), width * height
    for ratio in _ratios(min_tiles, max_tiles):
        diff = abs(aspect - ratio[0] / ratio[1])
        if diff < best_diff:
            best, best_diff = ratio, diff
        elif diff == best_diff and area > 0.5 * tile * tile * ratio[0] * ratio[1]:
            best = ratio
    return TileGrid(best[0], best[1], thumbnail and best[0] * best[1] != 1, tile)


def image_tiles(image: Image.Image, grid: TileGrid) -> list[Image.Image]:
    """The tiles of ``image`` on ``grid`` in row-major order, then the thumbnail (PIL's default filter)."""
    resized = image.resize(grid.resized)
    s = grid.tile
    out = [resized.crop(((i % grid.cols) * s, (i // grid.cols) * s, (i % grid.cols + 1) * s,
                         (i // grid.cols + 1) * s)) for i in range(grid.cols * grid.rows)]
    return out + ([image.resize((s, s))] if grid.thumbnail else [])


#: ``self.transformer`` (L571-576)
_TRANSFORM = T.Compose([T.Lambda(lambda im: im.convert("RGB") if im.mode != "RGB" else im),
                        T.Resize((TILE, TILE), interpolation=InterpolationMode.BICUBIC), T.ToTensor(),
                        T.Normalize(mean=IMAGENET_MEAN, std=IMAGENET_STD)])


def tile_pixels(images: list[Image.Image], dtype: torch.dtype) -> torch.Tensor:
    """(n, 3, 448, 448) pixels of tiles (or a video's frames), in ``dtype`` (docs/sa2va.md, step 2)."""
    return torch.stack([_TRANSFORM(im) for im in images]).to(dtype)


def image_tokens(tokens_per_image: int, images: int) -> str:
    """``image_token_str`` (L703-708): ``images`` blocks of ``tokens_per_image`` ``<IMG_CONTEXT>``,
    stripped."""
    one = f"{IMG_START}{IMG_CONTEXT * tokens_per_image}{IMG_END}\n"
    return (one * images).strip()


def prompt_text(question: str, tokens_per_image: int, images: int) -> str:
    """The text ``predict_forward`` encodes: ``question``'s ``<image>`` replaced by the image tokens, inside
    ``qwen_chat``'s instruction (L712-718)."""
    return INSTRUCTION.format(input=question.replace("<image>", image_tokens(tokens_per_image, images)))


__all__ = ["TileGrid", "image_tiles", "image_tokens", "prompt_text", "tile_grid", "tile_pixels"]
