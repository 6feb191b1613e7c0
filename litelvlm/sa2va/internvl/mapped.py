"""The paired CLIP's scores mapped onto Sa2VA-InternVL3's visual tokens (this project's adaptation, as
:mod:`litelvlm.qwen.mapped` maps them onto a merged Qwen grid).

An image's tokens are its tiles' (each 448-px tile of the resized image a 16 x 16 grid after the pixel
shuffle, the tiles in row-major order) and, with more than one tile, the thumbnail's (the whole image's
16 x 16 grid): every token covers a box of the original image (the tiles cut the image resized to their grid,
the thumbnail the image resized to 448 x 448), and takes the area-weighted mean of CLIP's patch scores over
its box (:func:`litelvlm.qwen_vision.grid.resample_matrix`, CLIP seeing the image padded to a square). A
video's frames are each one 16 x 16 grid over the whole frame
(:func:`litelvlm.qwen.mapped.frames_mapped_inputs`).
"""

from __future__ import annotations

import torch

from ...data.geometry import transform_params
from ...llm import relevance
from ...pruning import MappedInputs, SelectorInputs
from ...qwen.mapped import CLIP_FEATURE_LAYER
from ...qwen.pixels import clip_vision
from ...qwen_vision.grid import TokenGrid, resample_matrix, source_edges
from .config import PATCH, TILE
from .tiles import TileGrid


def tile_weights(src: tuple[torch.Tensor, torch.Tensor], grid: TileGrid,
                 image_size: tuple[int, int]) -> torch.Tensor:
    """(N, P) float64: each visual token's share of the source map's cells (edges ``src`` in original-image
    pixels), the tiles' tokens in the LLM's order, then the thumbnail's."""
    side = TILE // PATCH                          # 32 patches, 16 tokens a side
    t = side // 2
    whole = resample_matrix(src, TokenGrid(1, grid.rows * side, grid.cols * side), image_size)
    tile, row, col = torch.meshgrid(torch.arange(grid.rows * grid.cols), torch.arange(t), torch.arange(t),
                                    indexing="ij")
    index = ((tile // grid.cols) * t + row) * (grid.cols * t) + (tile % grid.cols) * t + col
    out = whole[index.flatten()]
    if grid.thumbnail:
        out = torch.cat([out, resample_matrix(src, TokenGrid(1, side, side), image_size)])
    return out


@torch.no_grad()
def tiles_mapped_inputs(pipe, prepared, clip_text: str) -> MappedInputs:
    """The paired CLIP's traces of the image (padded to a square) and of the sentence's text (``clip_text``:
    the pipeline's ``clip_question`` of it, or the expression), mapped onto the tiles' tokens
    (:func:`tile_weights`); the pipeline's similarity source (``llm``: the relevance in the LLM's input
    space)."""
    clip, cache = pipe.clip, prepared.clip_cache
    if "vision" not in cache:
        cache["vision"] = clip_vision(pipe, prepared)
        params = transform_params(clip.geometry, *prepared.image_size, pad_to_square=True)
        rows, cols = clip.grid
        cache["weights"] = tile_weights(source_edges(params, rows, cols), prepared.grid, prepared.image_size)
    sentence = prepared.sentences[0]
    text = clip.encode_text([pipe.clip_question(sentence) if clip_text == "question" else sentence],
                            warn_truncation=False)
    inputs = SelectorInputs(vision=cache["vision"], text=text, feature_layer=CLIP_FEATURE_LAYER,
                            seed=prepared.seed)
    similarity = relevance.prompt_relevance(pipe, prepared)[None] if pipe.similarity_source == "llm" else None
    return MappedInputs(inputs, cache["weights"], similarity_override=similarity)


__all__ = ["tile_weights", "tiles_mapped_inputs"]
