"""The LLaVA-based methods that read the CLIP vision tower, against their official rules on what the tower
returns under the official pins (``tests/litelvlm/methods/official_pin.py``): transformers 4.37.2 (VisPruner,
VisionZip, HiPrune, VScan) and 4.31.0 (LLaVA-PruMerge).

What these rules read depends on the version: ``hidden_states`` (the feature layer -2), ``attentions``
(``output_attentions=True``: 4.x's eager ``CLIPAttention``, queries scaled before the product, softmax in the
tower's dtype; transformers 5's eager kernel scales after the product and softmaxes in float32) and what
forward hooks on ``q_proj`` / ``k_proj`` see. Each method's selection, by this project's code on the pinned
tower's ``hidden_states`` (the q/k/v it recomputes from the same modules), equals the official rule
(transcribed in the methods' ``test_*_official.py``) on the pinned tensors; the attentions the project
recomputes equal the pinned ones bit for bit. The towers' own outputs are compared last: the project's CLIP
trace under the official numerics (4.x's eager kernel, ``litelvlm.clip.attention``) and its 4.x-order block
(``litelvlm.pruning.tower.eager_clip_block``) equal 4.37.2's bit for bit in float32 and bfloat16;
transformers 5's eager tower (``clip_softmax="float32"``) does in float32 at CLIP ViT-L's head size 64, not in
bfloat16 and float16 on ViT-L's shapes or at a head size that is not a power of 4 (the softmax dtype, the
scaling order).
"""

from __future__ import annotations

import pytest
import torch

from litelvlm.methods import vscan
from litelvlm.methods.prumerge import EXTRA_INDEX, prumerge_adaptive
from litelvlm.methods.select import select
from litelvlm.pruning import scores
from litelvlm.pruning.tower import eager_clip_block
from tests.litelvlm.methods.official_pin import DTYPES
from tests.litelvlm.methods.test_hiprune_official import official_hiprune
from tests.litelvlm.methods.test_prumerge_official import official
from tests.litelvlm.methods.test_vispruner_visionzip_official import (
    check_visionzip_budget,
    check_vispruner_budget,
    official_clip_attention,
)
from tests.litelvlm.methods.test_vscan_official import (
    EDGES,
    official_encode_images,
    official_image_attentions,
)

TOWERS_437 = [(kind, dt) for kind, dts in DTYPES.items() for dt in dts]


def _ids(cases):
    return [f"{kind}-{str(dt).removeprefix('torch.')}" for kind, dt in cases]


def test_the_official_sides_ran_under_the_pins(pinned_437, pinned_431):
    for got, version in ((pinned_437, "4.37.2"), (pinned_431, "4.31.0")):
        assert got.versions["transformers"] == version and "pinned" in got.versions["transformers_path"]
    for t in [*pinned_437.towers.values(), *pinned_431.towers.values()]:
        assert t.pinned["attention_class"] == "CLIPAttention"   # eager: these versions' only CLIP kernel


@pytest.mark.parametrize("tower", TOWERS_437, ids=_ids(TOWERS_437))
def test_the_attentions_the_project_reads_are_4_37s(pinned_437, tower):
    """Every block's attention, as the project recomputes it on the pinned ``hidden_states`` (the full
    matrix, ``scores.eager_attention``) and as the tests transcribe it (``official_clip_attention``), equals
    4.37.2's ``attentions`` bit for bit; VisionZip's ``metric`` too."""
    t = pinned_437.towers[tower]
    inputs, hs = t.inputs(), t.pinned["hidden_states"]
    layers = t.model.vision_model.encoder.layers
    read = (5, len(layers) - 2) if tower[0] == "vscan" else range(len(layers))   # VScan reads blocks 5 and -2
    for b in read:
        layer = layers[b]
        with torch.no_grad():
            w, metric = official_clip_attention(layer.self_attn, layer.layer_norm1(hs[b]))
        assert torch.equal(w, t.pinned["attentions"][b]), b
        assert torch.equal(scores.eager_attention(inputs, b), t.pinned["attentions"][b][0]), b
        if b == len(layers) - 2:
            assert torch.equal(metric, t.pinned["metric"])


@pytest.mark.parametrize("budgets", [(1, 2, 3, 4, 5, 15, 16, 17, 31, 32, 33, 48, 63, 64),
                                     pytest.param(range(1, 65), marks=pytest.mark.slow)],
                         ids=["edges", "all"])
@pytest.mark.parametrize("dtype", DTYPES["small"], ids=str)
def test_vispruner_and_visionzip_under_4_37(pinned_437, dtype, budgets):
    """K = 1..64 on the 8x8 tower (the default suite: the edges, VisionZip's C = 0 ones included, and the
    quarters): VisPruner's and VisionZip's official code on 4.37.2's ``hidden_states``, ``attentions`` and
    VisionZip's hooked ``metric``; this project on the same ``hidden_states``."""
    t = pinned_437.towers[("small", dtype)]
    inputs, hs, attns = t.inputs(), t.pinned["hidden_states"], t.pinned["attentions"]
    for budget in budgets:
        check_visionzip_budget(inputs, hs, attns, t.pinned["metric"], budget,
                               atol=1e-5 if dtype == torch.float32 else 1e-2)
        check_vispruner_budget(inputs, hs, attns, budget)


@pytest.mark.parametrize("budgets", [(1, 2, 3, 7, 64, 128, 191, 192, 193, 288, 574, 575, 576),
                                     pytest.param(range(1, 577), marks=pytest.mark.slow)],
                         ids=["edges", "all"])
@pytest.mark.parametrize("dtype", DTYPES["llava"], ids=str)
def test_hiprune_under_4_37(pinned_437, dtype, budgets):
    """HiPrune's official ``encode_images`` on 4.37.2's ``attentions`` (object layer 9, alpha 0.1)."""
    t = pinned_437.towers[("llava", dtype)]
    inputs = t.inputs()
    for budget in budgets:
        sel = select("hiprune", inputs, budget, object_layer=9)
        expected = official_hiprune([a.clone() for a in t.pinned["attentions"]], budget, 0.1, 9)
        assert sel.indices.tolist() == expected.tolist(), budget


@pytest.mark.parametrize("visuals", [EDGES, pytest.param(range(32, 577), marks=pytest.mark.slow)],
                         ids=["edges", "all"])
@pytest.mark.parametrize("dtype", DTYPES["vscan"], ids=str)
def test_vscan_vision_stage_under_4_37(pinned_437, dtype, visuals):
    """VScan's official scans and merge on 4.37.2's stacked ``attentions`` (its blocks 5 and -2)."""
    t = pinned_437.towers[("vscan", dtype)]
    inputs, features = t.inputs(), t.features
    image_attentions = official_image_attentions(t.pinned["attentions"])
    for visual in visuals:
        scans = vscan.global_and_local_scan(inputs, visual) if visual < 576 else None
        merged, mask = official_encode_images(image_attentions.clone(), features.clone(), visual)
        ref_kept = torch.arange(576)[mask[0]]
        if scans is None:
            assert ref_kept.tolist() == list(range(576))
            continue
        kept, dropped = vscan.raster_split(torch.cat([scans["local"], scans["global"]]), 576)
        assert kept.tolist() == ref_kept.tolist(), visual
        torch.testing.assert_close(vscan.token_merging(features[0], kept, dropped), merged[0][mask[0]],
                                   rtol=0, atol=1e-5 if dtype == torch.float32 else 0)


@pytest.mark.parametrize("plus", [False, True], ids=["prumerge", "prumerge+"])
@pytest.mark.parametrize("dtype", (torch.float32, torch.bfloat16), ids=str)
def test_prumerge_under_4_31(pinned_431, dtype, plus):
    """LLaVA-PruMerge's official selection and merge on 4.31.0's ``hidden_states`` and the ``q_proj`` /
    ``k_proj`` outputs its hooks see on the last block: the adaptive (official) mode, and the fixed budget of
    the official ``if_adaptive=False`` branch."""
    t = pinned_431.towers[dtype]
    inputs, hs, q, k = t.inputs(), t.pinned["hidden_states"], t.pinned["q"], t.pinned["k"]
    with torch.no_grad():
        q_ours, k_ours, _ = t.vision_qkv(len(hs) - 2, hs[-2])
    assert torch.equal(q_ours, q) and torch.equal(k_ours, k)   # what the hooks saw
    expected, idx = official(hs, q, k, plus)
    sel = prumerge_adaptive(inputs, plus)
    assert sel.indices.tolist() == idx.tolist() + [EXTRA_INDEX]
    if dtype == torch.float32:   # bfloat16: exactly tied merge candidates can fall differently
        torch.testing.assert_close(sel.features, expected, atol=1e-5, rtol=1e-5)
    if not plus:
        for budget in (2, 64, 129):
            expected, idx = official(hs, q, k, False, if_adaptive=False, reduction_ratio=(budget - 1) / 576)
            sel = select("prumerge", inputs, budget)
            assert sel.indices.tolist() == idx.tolist() + [EXTRA_INDEX], budget


OWN = [(kind, dt) for kind, dt in TOWERS_437 if kind != "vscan"]   # VScan's 24 blocks: the same block


@pytest.mark.parametrize("tower", OWN, ids=_ids(OWN))
def test_the_towers_own_outputs_against_4_37(pinned_437, tower):
    """The project's CLIP trace under the official numerics (4.x's eager kernel,
    ``litelvlm.clip.attention``) and the 4.37-order block reproduce 4.37.2's ``hidden_states`` bit for bit,
    in float32 and bfloat16; transformers 5's eager tower (``clip_softmax="float32"``, this project's earlier
    computation) does where the order of operations cannot round differently, float32 at head size 64, and
    differs by rounding elsewhere (bfloat16 on ViT-L/14-336's shapes: up to 0.086 in layer -2,
    docs/fidelity.md)."""
    t = pinned_437.towers[tower]
    hs = t.pinned["hidden_states"]
    x = hs[0]
    for b, layer in enumerate(t.model.vision_model.encoder.layers):
        with torch.no_grad():
            x, _ = eager_clip_block(layer, x)
        assert torch.equal(x, hs[b + 1]), b
    own = t.own_hidden_states()
    assert len(own) == len(hs) and all(torch.equal(a, b) for a, b in zip(own, hs, strict=True))
    earlier = t.own_hidden_states("float32")
    assert torch.equal(earlier[0], hs[0])   # the embeddings
    same = all(torch.equal(a, b) for a, b in zip(earlier, hs, strict=True))
    head = t.config["hidden_size"] // t.config["num_attention_heads"]
    if tower[1] == torch.float32 and head == 64:
        assert same
    else:   # the 8x8 towers at head size 12 differ; head 64 in bfloat16 can round alike on so few tokens
        tol = 1e-5 if tower[1] == torch.float32 else 0.1
        torch.testing.assert_close(earlier[-2], hs[-2], rtol=tol, atol=tol)
