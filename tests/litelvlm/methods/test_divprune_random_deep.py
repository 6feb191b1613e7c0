"""divprune+random-deep (this project's reading of the information-horizon paper's combination, which has
no code): DivPrune keeps M = round(ratio N) (at least K) visual tokens at the LLM input, K of them drawn
uniformly remain from LLM layer L.

Checked: the two stages (the M entering tokens are DivPrune's, the K are ``random``'s draw among them, a spy
on the decoder layers sees M visual tokens before L and K from L); K at every budget 1..N on the tiny Sa2VA
and (slow) the tiny GLaMM; K >= M is DivPrune at the input alone; ratio 1 is random-deep exactly; the
schedule, the options and the ratio's check."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch

from litelvlm.errors import LiteLVLMError
from litelvlm.methods import get_method
from litelvlm.methods.divprune import divprune_select
from litelvlm.methods.divprune_random_deep import intermediate_count
from litelvlm.methods.random_deep import default_layer, uniform_draw
from tests.fixtures.layers import layer_inputs

NAME = "divprune+random-deep"







def test_the_intermediate_count_and_the_schedule():
    assert [intermediate_count(k, 576) for k in (1, 64, 288, 300, 576)] == [288, 288, 288, 300, 576]
    assert intermediate_count(10, 576, 0.098) == 56 and intermediate_count(10, 42, 1.0) == 42
    for bad in (0.0, 1.5):
        with pytest.raises(LiteLVLMError, match=r"ratio must be in \(0, 1\]"):
            intermediate_count(10, 576, bad)
    spec = get_method(NAME)
    assert spec.token_schedule(64, 576, 32) == ((0, 288), (20, 64))
    assert spec.token_schedule(64, 576, 28, {"ratio": 0.25, "layer": 9}) == ((0, 144), (9, 64))
    assert spec.token_schedule(400, 576, 32) == ((0, 400),)
    assert spec.attention_layers(32) == [] and spec.positions == "renumber" and spec.original_positions
    assert spec.stage.name == "llm-stages" and spec.prunes_inside_llm and not spec.prunes_at_one_layer


def test_the_options_share_random_deeps_layer():
    spec, deep = get_method(NAME), get_method("random-deep")
    assert spec.options[0] == deep.options[0] and spec.options[1].dest == "random_deep_ratio"
    assert "this project's reading" in spec.description and "this project's reading" in spec.options[1].help
    args = SimpleNamespace(random_deep_layer=None, random_deep_ratio=0.25)
    assert spec.options_from(args) == {"ratio": 0.25} and deep.options_from(args) == {}


def test_the_two_stages(sa2va):
    pipe, prep = sa2va
    ctx, spec, n = pipe.context(prep), pipe.spec(NAME), pipe.num_visual(prep)
    for k in range(1, n + 1):
        sel = spec.select(ctx, k)
        m = intermediate_count(k, n)
        entering = divprune_select(ctx.visual_embeds, m).indices
        assert torch.equal(sel.parts["input"], entering)
        assert torch.equal(sel.indices, entering[uniform_draw(m, k, 0)]) and len(sel) == k
        assert sel.prune_layer == (default_layer(2) if m > k else 0)
    depth, seq = len(pipe.language_model.layers), pipe.layout(prep, n).seq_len
    with torch.no_grad():
        for k in range(1, n + 1):
            m = intermediate_count(k, n)
            with layer_inputs(pipe.language_model) as seen:
                out = pipe.ground(prep, NAME, k)
            lengths = [s for s, _ in seen]
            if m > k:  # M visual tokens before layer L, K from it
                assert lengths == [seq - n + m] * out.prune_layer + [seq - n + k] * (depth - out.prune_layer)
            else:
                assert lengths == [seq - n + k] * depth and out.prune_layer == 0
            assert len(out.kept_indices) == k and out.seq_len == seq - n + k


def test_k_from_m_on_is_divprune_and_ratio_one_is_random_deep(sa2va):
    pipe, prep = sa2va
    n = pipe.num_visual(prep)
    with torch.no_grad():
        for k in (n // 2 + 1, n - 3):
            both, div = pipe.ground(prep, NAME, k), pipe.ground(prep, "divprune", k)
            assert torch.equal(both.kept_indices, div.kept_indices)
            assert torch.equal(both.seg_hidden, div.seg_hidden)
        for k in (1, 9):
            both, deep = pipe.ground(prep, NAME, k, ratio=1.0), pipe.ground(prep, "random-deep", k)
            assert torch.equal(both.kept_indices.cpu(), deep.kept_indices.cpu())
            torch.testing.assert_close(both.seg_hidden, deep.seg_hidden, rtol=0, atol=1e-6)


@pytest.mark.slow
def test_every_budget_on_glamm(glamm):
    pipe, prep = glamm
    ctx, spec = pipe.context(prep), pipe.spec(NAME)
    for k in range(1, 577):
        sel = spec.select(ctx, k)
        assert len(sel) == k and bool(torch.isin(sel.indices, sel.parts["input"]).all())
    with torch.no_grad(), layer_inputs(pipe.language_model) as seen:
        out = pipe.ground(prep, NAME, 64, layer=2)
        full = pipe.ground(prep, NAME, 64, ratio=1.0, layer=2)
        deep = pipe.ground(prep, "random-deep", 64, layer=2)
    seq = pipe.layout(prep, 576).seq_len
    assert [s for s, _ in seen[:4]] == [seq - 576 + 288] * 2 + [seq - 576 + 64] * 2 and out.prune_layer == 2
    torch.testing.assert_close(full.seg_hidden, deep.seg_hidden, rtol=0, atol=1e-6)
