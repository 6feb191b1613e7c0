"""``tower_index``: a Qwen vision tower called with its precomputed index tensors gives what its own
forward gives, bit for bit (Qwen2.5-VL with window attention, Qwen3-VL with interpolated position
embeddings; eager and SDPA; one image, odd grids, several images and frame groups), and reads no value back
from its device (on ``meta``, where any read-back raises, the indexed call runs and the plain one does not):
what a CUDA graph needs to record it."""

from __future__ import annotations

import pytest
import torch
from transformers.models.qwen2_5_vl.configuration_qwen2_5_vl import Qwen2_5_VLVisionConfig
from transformers.models.qwen2_5_vl.modeling_qwen2_5_vl import Qwen2_5_VisionTransformerPretrainedModel
from transformers.models.qwen3_vl.configuration_qwen3_vl import Qwen3VLVisionConfig
from transformers.models.qwen3_vl.modeling_qwen3_vl import Qwen3VLVisionModel

from litelvlm.qwen_vision import index as index_module
from litelvlm.qwen_vision.index import forward_index, tower_index

GRIDS = [[[1, 10, 14]], [[1, 2, 2]], [[1, 22, 6], [2, 8, 12]]]


def _tower(kind: str, attn: str) -> torch.nn.Module:
    torch.manual_seed(0)
    if kind == "qwen2.5-vl":
        cfg = Qwen2_5_VLVisionConfig(depth=4, hidden_size=32, num_heads=2, intermediate_size=48,
                                     out_hidden_size=24, window_size=112, fullatt_block_indexes=[1, 3])
        tower = Qwen2_5_VisionTransformerPretrainedModel._from_config(cfg, attn_implementation=attn)
    else:
        cfg = Qwen3VLVisionConfig(depth=3, hidden_size=32, num_heads=2, intermediate_size=48,
                                  out_hidden_size=24, num_position_embeddings=36,
                                  deepstack_visual_indexes=[0, 1])
        tower = Qwen3VLVisionModel._from_config(cfg, attn_implementation=attn)
    for p in tower.parameters():  # random weights everywhere (the default init leaves some at zero)
        p.data.normal_(0, 0.2)
    return tower.eval()


def _pixels(tower, grid: torch.Tensor) -> torch.Tensor:
    c = tower.config
    width = c.in_channels * c.temporal_patch_size * c.patch_size ** 2
    return torch.randn(int(grid.prod(-1).sum()), width, generator=torch.Generator().manual_seed(1))


def _outputs(out) -> list[torch.Tensor]:
    return [out.last_hidden_state, out.pooler_output, *(getattr(out, "deepstack_features", None) or [])]


@pytest.mark.parametrize("attn", ["eager", "sdpa"])
@pytest.mark.parametrize("kind", ["qwen2.5-vl", "qwen3-vl"])
def test_the_indexed_call_equals_the_towers_own(kind, attn):
    tower = _tower(kind, attn)
    for rows in GRIDS:
        grid = torch.tensor(rows)
        x = _pixels(tower, grid)
        with torch.no_grad():
            want = _outputs(tower(x, grid_thw=grid))
            got = _outputs(tower(x, grid_thw=grid, **tower_index(tower, grid)))
            by_call = _outputs(tower(x, grid_thw=grid, **forward_index(tower)(x, grid)))
        assert len(got) == len(want) >= 2
        for a, b, c in zip(got, want, by_call, strict=True):
            assert torch.equal(a, b) and torch.equal(c, b), (kind, attn, rows)


@pytest.mark.parametrize("kind", ["qwen2.5-vl", "qwen3-vl"])
def test_the_indexed_call_reads_nothing_back_from_the_device(kind):
    tower = _tower(kind, "sdpa").to("meta")
    grid = torch.tensor(GRIDS[2][1:])
    x = _pixels(tower, grid).to("meta")
    index = tower_index(tower, grid)
    assert {k for k, v in index.items() if isinstance(v, torch.Tensor) and v.device.type == "cpu"} == (
        {"cu_seqlens", "cu_window_seqlens"} if kind == "qwen2.5-vl" else {"cu_seqlens"})
    with torch.no_grad():
        out = tower(x, grid_thw=grid.to("meta"), **index)
        assert out.pooler_output.shape[0] == int(grid.prod(-1).sum()) // 4
        with pytest.raises((RuntimeError, NotImplementedError)):  # the plain call reads the grid back
            tower(x, grid_thw=grid.to("meta"))


def test_under_flash_attention_the_bounds_go_to_the_device_with_their_maxima(monkeypatch):
    monkeypatch.setattr(index_module, "is_flash_attention_requested", lambda config: True)
    tower = _tower("qwen2.5-vl", "sdpa").to("meta")
    index = tower_index(tower, torch.tensor([[1, 22, 6]]))
    assert index["cu_seqlens"].device.type == index["cu_window_seqlens"].device.type == "meta"
    # 11 x 3 merged tokens of 4 patches; windows of at most 4 x 3 of them
    assert index["max_seqlen"] == 132 and index["max_window_seqlen"] == 48
    assert all(isinstance(index[k], int) for k in ("max_seqlen", "max_window_seqlen"))
