"""The Qwen2.5-VL families' FLOPs parts: the tower bench a method pruning inside the tower is counted on."""

from __future__ import annotations

import torch

from analysis.efficiency.arch import cost_of, get_arch
from litelvlm.cost.meta import MetaScalars
from litelvlm.methods import get_method
from litelvlm.qwen.cost_parts import QwenSam2Parts, TowerBench


def test_the_benchs_full_run_is_the_preparations_vision_forward_counted_on_meta():
    """The real-tensor tower (random weights, eager attention) counts one full run as ``meta`` counts the
    preparation's vision forward (SDPA's products included), so the rows take the meta count in its place;
    IPCV's own run at a budget counts less, the same rule composed with FastV the same."""
    arch = get_arch("unipixel-tiny")
    cost = cost_of(arch)
    with MetaScalars():
        pipe = cost.build(arch, "meta", torch.float32, "sdpa")
        parts = QwenSam2Parts(cost, pipe, arch, None)
        vision = parts.vision_flops()
    bench = TowerBench(pipe.qwen.model.visual, parts.cpu_pixels, parts.grid)
    assert bench.full() == vision["vision"] + vision["projector"]
    options = {"vit_layer": 2, "as_layers": 1}
    ipcv = bench.run(arch.spec("ipcv"), 16, options)
    assert 0 < ipcv < bench.run(arch.spec("ipcv"), 64, options) < bench.full()
    assert bench.run(arch.spec("ipcv+fastv"), 16, {**options, "layer": 2}) == ipcv
    assert get_method("ipcv").uses_vision_tower and arch.spec("ipcv") is not get_method("ipcv")
