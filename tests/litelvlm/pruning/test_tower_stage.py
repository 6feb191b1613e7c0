"""The vision-tower stage (``litelvlm.pruning.tower``, ``Method("vision-tower", ...)``): a method choosing
between the encoder blocks of the family's own vision tower, the tower finishing on the kept tokens, run by
``ground`` through the stage object on GLaMM's CLIP tower; a family without the stage refuses such a method
before anything runs."""

from __future__ import annotations

import sys
import types

import pytest
import torch

import litelvlm.methods as methods
from litelvlm.errors import LiteLVLMError
from litelvlm.lazy import Lazy
from litelvlm.lvlm.family import GroundingPipeline
from litelvlm.method import Method
from litelvlm.method_stage import STAGE_OBJECTS, TOWER_STAGE
from litelvlm.pruning.tower import ClipTower, TowerBlock


def keep_last(ctx, budget: int, after: int = 0):
    """A trivial tower-stage method: after block ``after`` (and only there) the last K patches go on."""
    seen: list[TowerBlock] = []

    def observe(block: TowerBlock):
        seen.append(block)
        if block.index != after:
            return None
        n = block.hidden.shape[1] - block.prefix
        return torch.arange(n - budget, n)

    out = ctx.run(observe)
    assert [b.index for b in seen] == list(range(ctx.num_blocks)) and seen[-1].last
    assert seen[0].last == (ctx.num_blocks == 1)
    return out.selection()


KEEP_LAST = Method("vision-tower", keep_last)


@pytest.fixture
def registered(monkeypatch):
    """``tower-test``: :data:`KEEP_LAST` registered by one table row, as a method module of the package
    registers (the module stands in ``sys.modules``; it declares no options)."""
    module = types.ModuleType("litelvlm.methods.tower_test")
    module.KEEP_LAST = KEEP_LAST
    monkeypatch.setitem(sys.modules, module.__name__, module)
    monkeypatch.setitem(methods.TABLE, "tower-test", methods.Entry(
        Lazy("litelvlm.methods.tower_test", "KEEP_LAST"), "keeps the last K patches after block 0"))
    monkeypatch.setattr(methods, "_LOADED", {})
    return "tower-test"


def _tower(layers: int = 4, seed: int = 0):
    """A random transformers CLIP vision tower (width 32, 4 heads, a 4x4 grid) and its embeddings after the
    pre-norm."""
    from transformers import CLIPVisionConfig, CLIPVisionModel

    torch.manual_seed(seed)
    cfg = CLIPVisionConfig(hidden_size=32, intermediate_size=64, num_hidden_layers=layers,
                           num_attention_heads=4, image_size=56, patch_size=14, attn_implementation="eager")
    vm = CLIPVisionModel(cfg).eval()
    pixels = torch.randn(1, 3, 56, 56)
    with torch.no_grad():
        out = vm(pixel_values=pixels, output_hidden_states=True)
    return vm, out.hidden_states


def test_the_stage_is_a_typed_stage_object():
    spec = KEEP_LAST
    assert spec.stage is TOWER_STAGE and STAGE_OBJECTS["vision-tower"] is spec.stage
    assert spec.prunes_in_vision_tower and spec.acts_with_llm and spec.kind == "llm"
    assert not (spec.acts_on_clip or spec.uses_clip or spec.prunes_inside_llm or spec.selects_at_llm_input)
    assert spec.token_schedule(9, 576, 32) == ((0, 9),)  # the LLM sees K tokens from its first layer


def test_clip_tower_unpruned_is_the_towers_own_forward():
    """Nothing pruned: the stage's blocks give the tower's hidden states (feature layer -2), and each block's
    view is its attention (rows summing to 1) on all tokens."""
    vm, hs = _tower()
    views = []
    ctx = ClipTower(list(vm.encoder.layers), hs[0], feature_layer=-2)
    assert (ctx.num_visual, ctx.prefix, ctx.total_blocks, ctx.num_blocks) == (16, 1, 4, 3)
    out = ctx.run(lambda b: views.append(b))
    torch.testing.assert_close(out.features, hs[-2][0, 1:], atol=1e-5, rtol=1e-5)
    assert torch.equal(out.indices, torch.arange(16)) and [v.index for v in views] == [0, 1, 2]
    for v, h in zip(views, hs[1:]):
        torch.testing.assert_close(v.hidden, h, atol=1e-5, rtol=1e-5)
        assert v.attention.shape == (1, 4, 17, 17) and v.values.shape == v.keys.shape == (1, 4, 17, 8)
        torch.testing.assert_close(v.attention.sum(-1), torch.ones(1, 4, 17))


def test_clip_tower_finishes_on_the_kept_tokens():
    """Pruned after block 0: blocks 1..2 run on [CLS] + the kept patches, as transformers' own layers do on
    them."""
    vm, hs = _tower()
    ctx = ClipTower(list(vm.encoder.layers), hs[0], feature_layer=-2)
    keep = torch.tensor([3, 5, 6, 15])
    out = ctx.run(lambda b: keep if b.index == 0 else None)
    x = torch.cat([hs[1][:, :1], hs[1][:, 1:][:, keep]], dim=1)
    with torch.no_grad():
        for layer in vm.encoder.layers[1:3]:
            x = layer(x, None)
            x = x[0] if isinstance(x, tuple) else x
    torch.testing.assert_close(out.features, x[0, 1:], atol=1e-5, rtol=1e-5)
    assert out.indices.tolist() == [3, 5, 6, 15]
    # positions among the current ones
    twice = ctx.run(lambda b: {0: keep, 1: torch.tensor([0, 2])}.get(b.index))
    assert twice.indices.tolist() == [3, 6] and twice.features.shape == (2, 32)


def test_ground_runs_a_tower_method_on_glamm(tiny_glamm, tiny_glamm_prep, registered):
    """``ground`` hands the method to the tower stage: at K = N the LLM gets the tower's own tokens (the
    unpruned run); at K = 9 the projected tower output of the 9 kept patches, with their patch indices."""
    pipe, prep = tiny_glamm, tiny_glamm_prep
    n = pipe.num_visual(prep)
    assert pipe.method_error(registered) is None
    with torch.no_grad():
        full, ref = pipe.ground(prep, registered, n), pipe.ground(prep, "none")
        torch.testing.assert_close(full.seg_hidden, ref.seg_hidden, atol=1e-4, rtol=1e-4)
        out = pipe.ground(prep, registered, 9)
        ctx = pipe.tower_context(prep)
        vis, rows = ctx.llm_inputs(out.selection)
        direct = pipe.model.project(prep.vision.patches(prep.feature_layer)[0][n - 9:])
    assert out.kept_indices.tolist() == list(range(n - 9, n)) == rows.tolist()
    assert out.seq_len == ref.seq_len - (n - 9) and out.masks.shape == ref.masks.shape
    # tiny tower: the feature layer is block 0's output
    torch.testing.assert_close(vis, direct, atol=1e-5, rtol=1e-5)
    keep = pipe.ground(prep, registered, 9, positions="keep")
    assert keep.position_rule == "keep" and torch.isfinite(keep.mask_logits).all()


def test_a_family_without_the_stage_refuses_it(tiny_glamm, tiny_glamm_prep, registered):
    """Refused by the method's declaration, before anything runs; and the stage's output is no row of given
    visual_embeds."""
    no_tower = type("NoTower", (GroundingPipeline,), {"family": "no-tower"})
    # the contract's shared code alone: nothing of a family is reached
    no_tower.__abstractmethods__ = frozenset()
    assert not no_tower.abilities.tower_stage
    assert no_tower.method_error(no_tower, registered) == (
        "tower-test prunes inside a vision tower; the no-tower family offers no vision-tower stage")
    with pytest.raises(LiteLVLMError, match="offers no vision-tower stage"):
        no_tower().ground(None, registered, 4)
    with pytest.raises(LiteLVLMError, match="offers no vision-tower stage"):
        no_tower().tower_context(None)
    with pytest.raises(LiteLVLMError, match="no rows of the given visual_embeds"):
        tiny_glamm.ground(tiny_glamm_prep, registered, 9,
                          visual_embeds=tiny_glamm.visual_tokens(tiny_glamm_prep))


def test_the_cost_counts_a_tower_method_as_a_selection_before_the_llm(registered):
    """The efficiency study's plan: the selection re-runs the tower before the LLM (its FLOPs counted as
    ToMe's re-run), and the LLM sees K tokens from its first layer with no method run inside it."""
    from litelvlm.cost.tokens import schedule_plan, selects_on_clip, selects_on_llm_input

    spec = methods.get_method(registered)
    assert selects_on_clip(spec) and not selects_on_llm_input(spec)
    plan = schedule_plan(registered, 9, 576, 4, 20)
    assert plan.stages == ((0, 9),) and plan.method == "" and plan.budget == 0


def test_the_full_run_gives_the_prepared_visual_tokens(tiny_glamm, tiny_glamm_prep):
    """``TowerContext.full_run``: every block on every token, the run the input's preparation made, gives the
    family's own visual tokens."""
    pipe, prep = tiny_glamm, tiny_glamm_prep
    with torch.no_grad():
        torch.testing.assert_close(pipe.tower_context(prep).full_run(), pipe.visual_tokens(prep), atol=1e-5,
                                   rtol=1e-5)
