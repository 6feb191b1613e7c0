"""IPCV's rule (:mod:`litelvlm.methods.ipcv`) against a statement-by-statement transcription of the official
InternVL2 code (``tests/official_ipcv.py``), at every budget, on CLIP blocks.

Perkzi/IPCV @ 29726f044f0f9c0c2be4eb0005888ddeb5fa188e,
``InternVL2/InternVL2_IPCV/modeling_intern_vit_sparse_IPCV.py``:

* L427-633 ``IPCV_ViT.forward`` (per tile: the [CLS] kept, the patches ranked by
  ``get_retained_image_token_diff`` L645-663, neighbours among the kept tokens of every tile, the rebuild
  after the last block);
* L288-348 ``InternVisionEncoderLayer.forward`` (attention stabilisation); ``ls1`` / ``ls2`` are 1 and
  ``drop_path`` the identity on a CLIP block, whose ``layer_norm1`` / ``self_attn`` / ``layer_norm2`` /
  ``mlp`` stand for ``norm1`` / ``attn`` / ``norm2`` / ``mlp`` (the attention branch as
  :func:`litelvlm.pruning.tower.clip_attention_branch` computes it).

Two random sequences of the tiny CLIP tower's width (3 blocks, a [CLS] and 16 patches each) stand for two
tiles, so the neighbours cross tiles as in the official code; the tower runs every block (feature layer -1,
where the official code rebuilds).
"""

from __future__ import annotations

import logging

import pytest
import torch

from litelvlm.errors import LiteLVLMError
from litelvlm.methods import ipcv
from litelvlm.methods.ipcv import ipcv_run
from litelvlm.pruning.tower import ClipTower, clip_attention_branch
from tests.official_ipcv import official_ipcv

#: a CLIP block's branches (``ls1 = ls2 = 1``)
CLIP_BRANCHES = (lambda layer, x: clip_attention_branch(layer, x)[0],
                 lambda layer, x: layer.mlp(layer.layer_norm2(x)))


class Tiles(ClipTower):
    """The CLIP tower on several sequences at once, its output the final states (B, T, W) as they are."""

    def finish(self, x: torch.Tensor) -> torch.Tensor:
        return x


@pytest.fixture(scope="module")
def tower(tiny_hf_clip):
    layers = list(tiny_hf_clip.modules().vision_model.encoder.layers)
    width = layers[0].layer_norm1.normalized_shape[0]
    hidden = torch.randn(2, 17, width, generator=torch.Generator().manual_seed(0))
    return Tiles(layers, hidden, feature_layer=-1)


@pytest.mark.parametrize("as_layers", [0, 1, 3])
def test_every_budget_matches_the_official_code(tower, as_layers):
    """Every per-tile count 1..16 at pruning layer 2 (the only one of a 3-block tower), with and without
    attention stabilisation: the official code bit for bit."""
    for keep in range(1, 17):
        with torch.no_grad():
            expected = official_ipcv(tower.layers, tower.hidden, keep, 2, as_layers, 10, CLIP_BRANCHES)
        got = ipcv_run(tower, keep, 2, as_layers, 10)
        assert torch.equal(got, expected), (as_layers, keep)


def test_refusals_and_a_layer_past_the_feature_layer(tower, caplog, monkeypatch):
    """Below layer 2 refused (the official code fails); a layer the blocks run do not reach (GLaMM's feature
    layer -2 on this 3-block tower runs 2) prunes nothing; more patches than a tile holds refused."""
    with pytest.raises(LiteLVLMError, match="pruning layer"):
        ipcv_run(tower, 4, 1, 1, 10)
    short = Tiles(tower.layers, tower.hidden, feature_layer=-2)
    x = tower.hidden
    with torch.no_grad():
        for i in range(2):
            x = short.feed(i, short.attend(i, x, None))
    monkeypatch.setattr(ipcv, "_SAID_PAST", set())   # said once a process: this test's process afresh
    with caplog.at_level(logging.WARNING):
        assert torch.equal(ipcv_run(short, 4, 2, 1, 10), x)
        ipcv_run(short, 4, 2, 1, 10)
    # the null result named on screen, once for this layer and depth
    said = [r.getMessage() for r in caplog.records if "prunes nothing" in r.getMessage()]
    assert said == ["IPCV's pruning layer 2 lies past the blocks this tower runs (2): it prunes nothing (its "
                    "result is the unpruned tower's)"], said
    with pytest.raises(LiteLVLMError, match="patch tokens"):
        ipcv_run(tower, 17, 2, 1, 10)
