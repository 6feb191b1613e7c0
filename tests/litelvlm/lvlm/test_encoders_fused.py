"""``--encoders fused`` (``litelvlm.lvlm.encoders``): each encoder's repeated layers run through one compiled
layer function, the whole forward recorded as one CUDA graph per input key. On a CPU ``fused-eager`` (dynamo's
eager backend, no graph) equals the eager encoders bit for bit on every family's tiny model; the recording
path runs with torch.cuda's recording calls stood in; on CUDA (``gpu``) ``fused`` equals ``eager`` within
bfloat16's rounding."""

from __future__ import annotations

import pytest
import torch

from analysis.common.options.prefill_args import CUDA_ENCODERS, ENCODER_CHOICES, check_prefill
from litelvlm import switches
from litelvlm.errors import LiteLVLMError
from litelvlm.lvlm import encoders
from litelvlm.lvlm.encoders import install, layer_stack, module_of, one_layer, resolve_mode, uninstall
from tests.litelvlm.lvlm.test_encoders import _assert_equal, _captured, _FakeCuda, _image, _outputs, _tensors


class _Layer(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.proj = torch.nn.Linear(4, 4)

    def forward(self, x, scale: float = 1.0):
        return torch.tanh(self.proj(x)) * scale


class _Tower(torch.nn.Module):
    """A toy encoder: an embedding, a stack of three layers, a head (a two-module list of another shape)."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.embed = torch.nn.Linear(3, 4)
        self.layers = torch.nn.ModuleList(_Layer() for _ in range(3))
        self.heads = torch.nn.ModuleList([torch.nn.Linear(4, 2), torch.nn.Linear(4, 2, bias=False)])

    def forward(self, x):
        h = self.embed(x)
        for layer in self.layers:
            h = layer(h, scale=0.5)
        return self.heads[0](h) + self.heads[1](h)


def _compiles(monkeypatch, backend: str | None = None) -> list[tuple]:
    """Every ``torch.compile`` call as (the function compiled, the backend asked), compiled as asked or, with
    ``backend``, with that one instead (dynamo's eager: no code generated on a CPU)."""
    seen, real = [], torch.compile

    def spy(fn, **kw):
        seen.append((fn, kw.get("backend")))
        return real(fn, **(kw | ({"backend": backend} if backend else {})))
    monkeypatch.setattr(torch, "compile", spy)
    return seen


def _wrapped_calls(module, mode: str, inputs: list) -> tuple[encoders.CapturedEncoder, list]:
    """(``module`` wrapped as a :class:`~litelvlm.lvlm.encoders.CapturedEncoder` in ``mode``, its outputs on
    ``inputs`` in order), dynamo's caches cleared before and after."""
    torch._dynamo.reset()
    enc = encoders.CapturedEncoder(module, mode)
    try:
        with torch.no_grad():
            return enc, [enc(x) for x in inputs]
    finally:
        torch._dynamo.reset()


def test_fused_eager_runs_each_layer_through_one_compiled_function(monkeypatch):
    """The layer stack is the list of one class holding the most parameters; one ``torch.compile`` of
    :func:`one_layer` serves every layer of it, for that call only (then each layer's own ``forward``)."""
    tower, x = _Tower(), torch.randn(2, 3)
    with torch.no_grad():
        want = tower(x)
    assert layer_stack(tower) is tower.layers and layer_stack(torch.nn.Linear(2, 2)) is None
    seen = _compiles(monkeypatch)
    enc, got = _wrapped_calls(tower, "fused-eager", [x, x])
    assert seen == [(one_layer, "eager")] and enc.stack is tower.layers
    assert all(torch.equal(g, want) for g in got) and dict(enc.counts) == {"captured": 2}
    assert all("forward" not in vars(layer) for layer in tower.layers)


def test_fused_records_the_compiled_layers_as_one_graph_per_key(monkeypatch):
    """The CUDA path with torch.cuda's recording calls stood in: the graph is recorded (warm-up calls, then
    the recording) over the forward whose layers run through the compiled function, once per input key, with
    inductor as the backend (here swapped for dynamo's eager one: no code generated on a CPU)."""
    for name in ("Stream", "CUDAGraph", "graph", "stream", "current_stream"):
        monkeypatch.setattr(torch.cuda, name, getattr(_FakeCuda, name))
    seen = _compiles(monkeypatch, backend="eager")
    tower, x = _Tower(), torch.randn(2, 3)
    with torch.no_grad():
        want = tower(x)
    enc, got = _wrapped_calls(tower, "fused", [x, x, x, torch.randn(5, 3)])
    got = got[:3]
    assert seen == [(one_layer, "inductor")] and len(enc._graphs) == 2
    assert all(not isinstance(g, str) for g in enc._graphs.values())
    # a stood-in replay runs nothing: each call returns the recording's outputs, those of the eager forward
    assert all(torch.equal(g, want) for g in got) and dict(enc.counts) == {"captured": 4}


def test_fused_without_a_layer_stack_compiles_the_whole_forward(monkeypatch):
    seen = _compiles(monkeypatch)
    lin, x = torch.nn.Linear(3, 2), torch.randn(2, 3)
    enc, got = _wrapped_calls(lin, "fused-eager", [x])
    with torch.no_grad():
        assert torch.equal(got[0], lin(x))
    assert enc.stack is None and len(seen) == 1 and seen[0][0] is not one_layer


def test_fused_needs_cuda_and_auto_stays_graph():
    """Refused off CUDA by the library and, before any model loads, by every command's option check."""
    assert resolve_mode("auto", "cuda") == "graph" and resolve_mode("fused-eager", "cpu") == "fused-eager"
    with pytest.raises(ValueError, match="--encoders fused records CUDA graphs: it needs a CUDA device"):
        resolve_mode("fused", "cpu")
    with pytest.raises(LiteLVLMError, match="--encoders fused records CUDA graphs: it needs --device cuda"):
        check_prefill("auto", False, "off", "auto", "cpu", "fused")
    check_prefill("auto", False, "off", "auto", "cpu", "fused-eager")
    check_prefill("auto", False, "off", "auto", "cuda", "fused")


def test_every_command_offers_the_library_s_encoder_modes():
    """The commands' one declaration of the choices (no torch there) names the library's modes."""
    assert ENCODER_CHOICES is switches.ENCODER_CHOICES
    assert CUDA_ENCODERS is encoders.CUDA_MODES is switches.CUDA_MODES
    assert ENCODER_CHOICES == ("auto", "eager", "graph", "fused", "compile", "compile-eager", "fused-eager")


def test_glamm_encoders_fused_equal_the_eager_ones(tiny_glamm):
    """CLIP's vision and text towers and SAM's image encoder, each with its layer stack."""
    runs = [("none", None), ("litelvlm", 16)]
    eager = _outputs(tiny_glamm, _image(), runs)
    got, record, counts = _captured(tiny_glamm, "fused-eager", runs=runs)
    _assert_equal(got, eager)
    assert record["encoders"] == "fused-eager" and "SamVisionEncoder" in counts
    assert all(c.get("captured", 0) >= 1 and not c.get("eager") for c in counts.values()), counts


@pytest.mark.slow
@pytest.mark.parametrize("model", ["unipixel-tiny-random:0", "sa2va-tiny-random:0",
                                   "sa2va-internvl3-tiny-random:0", "sa2va-qwen3-vl-tiny-random:0"])
def test_the_other_families_encoders_fused_equal_the_eager_ones(model):
    """The Qwen2.5-VL and Qwen3-VL towers (with their index tensors), SAM 2's Hiera encoder, InternViT."""
    from litelvlm.registry.families import load_pipeline

    pipe = load_pipeline(model)
    runs, one = [("none", None), ("fastv", 8)], ["the dog on the left"]
    eager = _outputs(pipe, _image(), runs, one)
    got, _, counts = _captured(pipe, "fused-eager", runs=runs, sentences=one)
    _assert_equal(got, eager)
    assert all(c.get("captured", 0) >= 1 and not c.get("eager") for c in counts.values()), counts
    stacks = {type(module_of(m)).__name__: layer_stack(module_of(m)) for m in pipe.encoder_modules()}
    assert all(s is not None for s in stacks.values()), stacks


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
@pytest.mark.parametrize("model", ["tiny-random:0", "unipixel-tiny-random:0",
                                   "sa2va-internvl3-tiny-random:0", "sa2va-qwen3-vl-tiny-random:0"])
def test_fused_encoders_equal_the_eager_ones_on_cuda(model):
    """Inductor's kernels of each layer, replayed as one CUDA graph (a second call replays): the prepared
    input within bfloat16's rounding of the eager path's, the mask logits too, and the masks but for pixels
    whose logit is within that rounding of 0 (as the captured prefill's test)."""
    from litelvlm.registry.families import load_pipeline

    pipe = load_pipeline(model, device="cuda", dtype=torch.bfloat16)
    one, runs = ["the dog on the left"], [("none", None)]
    prep_w, out_w = _outputs(pipe, _image(), runs, one)
    torch._dynamo.reset()
    runner = install(pipe, "fused")
    try:
        _outputs(pipe, _image(), runs, one)   # compiles the layers and records the graphs
        prep_g, out_g = _outputs(pipe, _image(), runs, one)
        print(model, {type(e.module).__name__: dict(e.counts) for e in runner.encoders.values()},
              dict(runner.eager_reasons()))
    finally:
        uninstall(pipe)
        torch._dynamo.reset()
    for a, b in zip(_tensors(prep_g), _tensors(prep_w), strict=True):
        if a.is_floating_point():
            assert float((a.float() - b.float()).abs().max() / b.float().abs().max().clamp_min(1.0)) < 5e-2
        else:
            assert torch.equal(a, b)
    out, want = out_g[runs[0]], out_w[runs[0]]
    torch.testing.assert_close(out.mask_logits, want.mask_logits, rtol=5e-2, atol=5e-2)
    flipped = out.masks != want.masks
    near = want.mask_logits.float().abs() <= 5e-2 + 5e-2 * out.mask_logits.float().abs()
    assert not (flipped & ~near.reshape(flipped.shape)).any()
    assert not runner.eager_reasons(), dict(runner.eager_reasons())
