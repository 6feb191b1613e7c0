"""InternViT's vision-tower stage (:mod:`litelvlm.sa2va.internvl.tower`) and IPCV's InternVL2 rule on it
against the official code (``tests/official_ipcv.py``: Perkzi/IPCV @ 29726f0,
``InternVL2/InternVL2_IPCV/modeling_intern_vit_sparse_IPCV.py`` L288-348, L427-663), on the tiny random
Sa2VA-InternVL3 (its tiles, odd image sizes)."""

from __future__ import annotations

import pytest
import torch

from litelvlm.errors import LiteLVLMError
from litelvlm.methods.ipcv import ipcv_run
from tests.fixtures.images import noise_image
from tests.official_ipcv import official_ipcv

#: an InternViT block's branches as the official layer computes them: ``attn(norm1(h)) * ls1``,
#: ``mlp(norm2(h)) * ls2``
BRANCHES = (lambda layer, x: layer.attention(layer.layernorm_before(x))[0] * layer.lambda_1,
            lambda layer, x: layer.mlp(layer.layernorm_after(x)) * layer.lambda_2)


@pytest.fixture(scope="module")
def case(internvl_tiny):
    pipe = internvl_tiny.pipe
    prep = pipe.prepare(noise_image(301, 97, seed=4), ["the cup"])
    return pipe, prep, pipe.tower_context(prep)


def test_the_unpruned_run_is_prepare_images(case):
    """Every block run as its two branches on every token, then ``finish``: the image's visual tokens."""
    pipe, prep, tower = case
    x = tower.embed()
    with torch.no_grad():
        for i in range(tower.num_blocks):
            x = tower.feed(i, tower.attend(i, x, None))
        got = tower.finish(x)
    assert got.shape == prep.visual.shape and torch.allclose(got, prep.visual, atol=1e-5)


@pytest.fixture
def deeper(case):
    """The tiny tower's 2 blocks twice (4 blocks; IPCV prunes at a block in 2..blocks - 1), its output the
    final states as they are."""
    pipe, prep, tower = case
    layers, finish = tower.layers, tower.finish
    tower.layers, tower.num_blocks, tower.finish = layers * 2, 2 * len(layers), lambda x: x
    yield tower
    tower.layers, tower.num_blocks, tower.finish = layers, len(layers), finish


@pytest.fixture(scope="module")
def official_branches():
    """:data:`BRANCHES`, each call's output kept for the module: a branch is a function of its block and
    input, so a block's input seen before (the unpruned blocks ahead of the pruning layer, the same at every
    count and case) gives the output computed then, bit for bit."""
    seen: list = []

    def memo(which):
        def branch(layer, x):
            for w, blk, inp, out in seen:
                if w == which and blk is layer and inp.shape == x.shape and torch.equal(inp, x):
                    return out
            out = BRANCHES[which](layer, x)
            seen.append((which, layer, x, out))
            return out
        return branch

    return memo(0), memo(1)


@pytest.mark.parametrize("layer,as_layers", [(2, 0), (2, 1), (3, 3)])
def test_the_rule_matches_the_official_code_on_the_tiles(deeper, official_branches, layer, as_layers):
    """The official code bit for bit on the tiles' sequences (neighbours across tiles) at the edges and a
    middle count; every tile keeps the same count."""
    patches = deeper.embed().shape[1] - 1
    for keep in sorted({1, 2, patches // 3, patches - 1, patches}):
        with torch.no_grad():
            expected = official_ipcv(deeper.layers, deeper.embed(), keep, layer, as_layers, 10,
                                     official_branches)
        assert torch.equal(ipcv_run(deeper, keep, layer, as_layers, 10), expected), keep


def test_ground_offers_ipcv_and_refuses_flowcut(case):
    """Sa2VA-InternVL3 offers the tower stage: IPCV runs through ``ground`` (the tiny 2-block tower never
    reaches the default layer 7: the unpruned masks, as the official code would give), FlowCut is refused by
    name, a layer below 2 too."""
    pipe, prep, tower = case
    assert pipe.method_error("ipcv") is None and pipe.method_error("ipcv+fastv") is None
    assert "InternViT" in pipe.method_error("flowcut")
    out, full = pipe.ground(prep, "ipcv", 4), pipe.ground(prep, "none")
    assert out.seq_len == full.seq_len and torch.allclose(out.masks.float(), full.masks.float(), atol=1e-4)
    with pytest.raises(LiteLVLMError, match="pruning layer"):
        pipe.ground(prep, "ipcv", 4, vit_layer=1)
