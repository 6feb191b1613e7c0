"""random-deep (this project's reading of the information-horizon paper, which has no code): K visual tokens
drawn uniformly (seeded as ``random``) remain from LLM layer L, the layers before L see all N.

Checked on the tiny GLaMM (LLaVA's Llama, 576 tokens, 4 layers) and the tiny Sa2VA (Qwen2.5-VL, 42 tokens, 2
layers): K tokens at every budget 1..N; the draw is ``random``'s (the same tokens as the ``random`` method
keeps at the input, reproducible, another seed draws others); a spy on the decoder layers sees all N visual
tokens before L and K from L on, at their original positions; the default layer scales 20 of 32; the layer
is checked; every family that runs FastV runs it."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
import torch
from PIL import Image

from litelvlm.errors import LiteLVLMError
from litelvlm.methods import get_method
from litelvlm.methods.random_deep import default_layer, uniform_draw
from tests.fixtures.layers import layer_inputs


def _image() -> Image.Image:
    return Image.fromarray(np.random.default_rng(0).integers(0, 255, (160, 200, 3), dtype=np.uint8))








def test_the_default_layer_is_20_of_32_at_every_depth():
    assert [default_layer(n) for n in (32, 28, 36, 40, 4, 2, 1)] == [20, 18, 23, 25, 3, 1, 1]
    spec = get_method("random-deep")
    assert spec.token_schedule(64, 576, 32) == ((0, 576), (20, 64))
    assert spec.token_schedule(64, 576, 32, {"layer": 5}) == ((0, 576), (5, 64))
    assert spec.attention_layers(32) == [] and spec.positions == "keep" and spec.prunes_at_one_layer
    assert "this project's reading" in spec.description and "this project's reading" in spec.options[0].help


@pytest.mark.parametrize("family", ["glamm", "sa2va"])
def test_every_budget_keeps_k_drawn_as_random_does(request, family):
    pipe, prep = request.getfixturevalue(family)
    ctx, spec, n = pipe.context(prep), pipe.spec("random-deep"), pipe.num_visual(prep)
    layer = default_layer(len(pipe.language_model.layers))
    for k in range(1, n + 1):
        sel = spec.select(ctx, k)
        assert len(sel) == k and sel.prune_layer == layer
        assert torch.equal(sel.indices.cpu(), torch.sort(torch.randperm(n, generator=torch.Generator()
                                                                          .manual_seed(0))[:k]).values)
    with torch.no_grad():
        for k in ((1, n // 3, n) if family == "glamm" else range(1, n + 1)):
            out = pipe.ground(prep, "random-deep", k)
            assert len(out.kept_indices) == k and out.prune_layer == layer
            assert torch.isfinite(out.mask_logits).all()


def test_the_draw_is_randoms_seeded_and_reproducible(glamm):
    pipe, prep = glamm
    with torch.no_grad():
        deep = pipe.ground(prep, "random-deep", 50)
        again = pipe.ground(prep, "random-deep", 50)
        flat = pipe.ground(prep, "random", 50)  # the same seed: the same tokens, kept at the input
        other = pipe.ground(pipe.prepare(_image(), ["the dog on the left"], seed=7), "random-deep", 50)
    assert torch.equal(deep.kept_indices, again.kept_indices)
    assert torch.equal(deep.seg_hidden, again.seg_hidden)
    assert torch.equal(deep.kept_indices.cpu(), flat.kept_indices.cpu())
    assert torch.equal(other.kept_indices.cpu(), uniform_draw(576, 50, 7))
    assert not torch.equal(other.kept_indices.cpu(), deep.kept_indices.cpu())
    assert torch.equal(pipe.spec("random-deep").select(pipe.context(prep), 50, seed=7).indices.cpu(),
                       uniform_draw(576, 50, 7))


@pytest.mark.parametrize("family,layer", [("glamm", None), ("glamm", 1), ("glamm", 4), ("sa2va", None)])
def test_layers_before_l_see_all_tokens_and_later_ones_k(request, family, layer):
    pipe, prep = request.getfixturevalue(family)
    n, k, depth = pipe.num_visual(prep), 5, len(pipe.language_model.layers)
    full = pipe.layout(prep, n)
    opts = {} if layer is None else {"layer": layer}
    with torch.no_grad(), layer_inputs(pipe.language_model) as seen:
        out = pipe.ground(prep, "random-deep", k, **opts)
    at = default_layer(depth) if layer is None else layer
    lengths = [s for s, _ in seen]
    assert lengths == [full.seq_len] * at + [full.seq_len - n + k] * (depth - at)
    assert out.prune_layer == at and out.seq_len == full.seq_len - n + k
    s = full.image_start
    rows = torch.cat([torch.arange(s), s + out.kept_indices.cpu(), torch.arange(s + n, full.seq_len)])
    for i, (_, pos) in enumerate(seen):  # the kept tokens keep their original positions
        want = full.position_ids.cpu() if i < at else full.positions(rows).cpu()
        assert torch.equal(pos.reshape(want.shape), want)


def test_the_layer_is_checked(glamm):
    pipe, prep = glamm
    spec = pipe.spec("random-deep")
    for bad in (0, 5):
        with pytest.raises(LiteLVLMError, match=r"random-deep's layer L must be in 1\.\.4"):
            spec.select(pipe.context(prep), 8, layer=bad)
    assert spec.layer_errors(SimpleNamespace(random_deep_layer=33), 32) == [
        "--random-deep-layer 33: random-deep's layer must be in 1..32 for this model (32 decoder layers)"]
    assert spec.options_from(SimpleNamespace(random_deep_layer=7)) == {"layer": 7}


def test_it_runs_wherever_fastv_runs():
    from litelvlm.registry.families import get_family
    from litelvlm.unipixel.video_pipeline import UniPixelVideoPipeline

    classes = [get_family(f) for f in ("glamm", "sa2va", "unipixel", "videoglamm")] + [UniPixelVideoPipeline]
    for cls in classes:
        probe = cls.__new__(cls)
        assert cls.method_error(probe, "fastv") is None
        assert cls.method_error(probe, "random-deep") is None, cls
        assert cls.method_error(probe, "divprune+random-deep") is None, cls
