"""``--layer-dtype float32``: decoder layers computed in float32 with their weights kept in bfloat16."""

from __future__ import annotations

import pytest
import torch
from PIL import Image

from litelvlm.errors import LiteLVLMError
from litelvlm.lvlm.upcast import upcast_layers


@pytest.fixture(scope="module")
def pipe(tiny_glamm_bf16):
    return tiny_glamm_bf16


@pytest.fixture(scope="module")
def prep(pipe):
    g = torch.Generator().manual_seed(1)
    image = Image.fromarray(torch.randint(0, 256, (41, 29, 3), generator=g, dtype=torch.uint8).numpy())
    return pipe.prepare(image, ["the left one", "a small cup"])


def test_layers_run_in_float32_and_weights_return_bit_for_bit(pipe, prep):
    layers = pipe.model.language_model.layers
    before = {n: (p.data_ptr(), p.dtype, p.detach().clone()) for n, p in layers.named_parameters()}
    seen: list[torch.dtype] = []
    probe = layers[0].self_attn.q_proj.register_forward_hook(
        lambda m, args, out: seen.extend([m.weight.dtype, args[0].dtype, out.dtype]))
    with torch.no_grad():
        ref = pipe.ground(prep, "litelvlm", 8)
        seen.clear()
        handles = upcast_layers(layers)
        try:
            up = pipe.ground(prep, "litelvlm", 8)
            fastv = pipe.ground(prep, "fastv", 8)  # a method that runs the layers itself
        finally:
            for h in handles:
                h.remove()
            probe.remove()
        again = pipe.ground(prep, "litelvlm", 8)
    assert seen[:3] == [torch.float32] * 3, seen[:3]
    for n, p in layers.named_parameters():
        ptr, dtype, value = before[n]
        assert p.data_ptr() == ptr and p.dtype == dtype == torch.bfloat16 and torch.equal(p, value), n
    assert torch.isfinite(up.mask_logits).all() and torch.isfinite(fastv.mask_logits).all()
    assert torch.equal(again.mask_logits, ref.mask_logits)  # hooks removed: plain bfloat16 again
    assert not torch.equal(up.seg_hidden, ref.seg_hidden)  # float32 arithmetic differs ...
    # ... a little
    torch.testing.assert_close(up.seg_hidden.float(), ref.seg_hidden.float(), atol=0.1, rtol=0.05)
    inter = (up.masks & ref.masks).sum().item()
    union = (up.masks | ref.masks).sum().item()
    assert union == 0 or inter / union > 0.95


def test_weights_restored_when_a_layer_fails(pipe):
    layer = pipe.model.language_model.layers[0]
    before = [p.data_ptr() for p in layer.parameters()]
    handles = upcast_layers(pipe.model.language_model.layers[:1])
    try:
        with pytest.raises(Exception):  # noqa: B017 - whatever the layer raises on a malformed input
            layer(torch.zeros(1, 3, 5, dtype=torch.bfloat16))
    finally:
        for h in handles:
            h.remove()
    assert [p.data_ptr() for p in layer.parameters()] == before
    assert all(p.dtype == torch.bfloat16 for p in layer.parameters())


def test_pipeline_option_and_refusals():
    from litelvlm.glamm import GlammPipeline

    p = GlammPipeline.from_model_string("tiny-random:0", dtype=torch.bfloat16, layer_dtype="float32")
    assert len(p.layer_hooks) == 2 * (p.model.arch.llm_layers + p.model.arch.sam_layers)
    assert p.describe()["layer_dtype"] == "float32"
    g = torch.Generator().manual_seed(2)
    image = Image.fromarray(torch.randint(0, 256, (33, 47, 3), generator=g, dtype=torch.uint8).numpy())
    with torch.no_grad():
        out = p.ground(p.prepare(image, ["the cat"]), "litelvlm", 8)  # SAM's encoder layers upcast as well
    assert torch.isfinite(out.mask_logits).all()
    assert all(q.dtype == torch.bfloat16 for q in p.model.sam.vision_encoder.parameters())
    with pytest.raises(LiteLVLMError, match="--layer-dtype 'float16'"):
        GlammPipeline.from_model_string("tiny-random:0", layer_dtype="float16")
    with pytest.raises(LiteLVLMError, match="use one of them"):
        GlammPipeline.from_model_string("tiny-random:0", layer_dtype="float32", quantize="int8")
