"""The index tensors a Qwen vision tower computes from its grid, computed ahead of the tower's call.

Qwen2.5-VL's and Qwen3-VL's towers derive rotary positions, window order (Qwen2.5-VL), position-embedding
interpolation taps (Qwen3-VL) and the attention's sequence bounds from ``grid_thw`` with host work
(``tolist``, loops, ``unique_consecutive``); outside flash attention each block then splits its windows by
``cu_seqlens.tolist()``. transformers reads every one of them from the forward's keyword arguments when given
(``transformers.vision_utils``: "pre-computing very dynamic and data-dependent tensors that can break model
graph capturing"). :func:`tower_index` runs those same functions before the call, so that the call itself
reads no value back from the tower's device: a CUDA graph can record it (:mod:`litelvlm.lvlm.encoders`), and
the ``meta`` device of the FLOP count can run it. Same functions, same inputs: the same values.
"""

from __future__ import annotations

import torch
from transformers.utils.generic import is_flash_attention_requested
from transformers.vision_utils import (
    get_vision_attention_seqlens,
    get_vision_interpolation_indices_and_weights,
    get_vision_position_ids,
    get_vision_window_index,
)


def tower_index(tower: torch.nn.Module, grid_thw: torch.Tensor) -> dict:
    """``tower.forward``'s precomputed keyword arguments for ``grid_thw``, each computed by the transformers
    function the forward itself calls, with the forward's arguments. Tensors the forward reads on the device
    (positions, window order, interpolation taps) are placed on the tower's device; the sequence bounds stay
    on the host, where the blocks read them (``tolist``), except under flash attention, which takes them on
    the device with their maxima given."""
    device = next(tower.parameters()).device
    config = tower.config
    flash = is_flash_attention_requested(config)
    grid = grid_thw if device.type != "meta" else grid_thw.cpu()
    out: dict = {}
    if hasattr(tower, "num_grid_per_side"):  # Qwen3-VL: learned position embeddings, interpolated
        taps, weights = get_vision_interpolation_indices_and_weights(
            grid, num_grid_per_side=tower.num_grid_per_side, mode=tower.interpolation_mode,
            align_corners=tower.interpolation_align_corners, spatial_merge_size=config.spatial_merge_size)
        out.update(interp_indices=taps.to(device), interp_weights=weights.to(device))
    out["position_ids"] = get_vision_position_ids(grid, tower.spatial_merge_size).to(device)
    cu_seqlens, _ = get_vision_attention_seqlens(grid, config)
    out.update(_bounds("", cu_seqlens, flash, device))
    if hasattr(tower, "window_size"):  # Qwen2.5-VL: window attention in all blocks but the full ones
        window_index, cu_window = get_vision_window_index(grid, spatial_merge_size=tower.spatial_merge_size,
                                                          window_size=tower.window_size,
                                                          patch_size=tower.patch_size)
        out["window_index"] = window_index.to(device)
        out.update(_bounds("window_", cu_window, flash, device))
    return out


def forward_index(tower: torch.nn.Module):
    """``index(hidden_states, grid_thw, **kwargs)`` of ``tower``'s call: :func:`tower_index` of its grid (an
    encoder's :class:`~litelvlm.lvlm.encoders.Indexed` index)."""
    def index(hidden_states: torch.Tensor, grid_thw: torch.Tensor, **kwargs) -> dict:
        return tower_index(tower, grid_thw)

    return index


def _bounds(kind: str, cu: torch.Tensor, flash: bool, device: torch.device) -> dict:
    """``cu_{kind}seqlens`` on the device with ``max_{kind}seqlen`` (as transformers' ``get_max_seqlen``
    computes it) under flash attention, else on the host (the blocks split by its values)."""
    if flash:
        return {f"cu_{kind}seqlens": cu.to(device), f"max_{kind}seqlen": int((cu[1:] - cu[:-1]).max())}
    return {f"cu_{kind}seqlens": cu.cpu()}


__all__ = ["forward_index", "tower_index"]
