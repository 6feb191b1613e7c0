"""The compiled prefill (``litelvlm.lvlm.compiled``, ``validate --compile``) equals the eager path: the same masks and
mask logits for the unpruned model, a CLIP-side method and a method that prunes inside the LLM. The default suite
compiles with dynamo's ``eager`` backend (the layers traced by dynamo and replayed: bit for bit); ``aot_eager`` (also
bit for bit) and inductor's fused CPU kernels (compared within rounding: their sums may associate differently) are
``slow``-marked: compiling takes minutes on 2 cores."""

from __future__ import annotations

import pytest
import torch

from litelvlm.lvlm.compiled import compile_layers, default_mode, uncompile_layers

RUNS = [("none", None), ("fastv", 64)]  # FastV: two sequence lengths, the layers called in pieces
SLOW_RUNS = [*RUNS, ("litelvlm", 64)]


def _ground_all(pipe, prep, runs=RUNS) -> dict:
    with torch.no_grad():
        return {(m, k): pipe.ground(prep, m, k) for m, k in runs}


def _compiled_outputs(pipe, prep, backend: str, runs=RUNS) -> tuple[dict, dict]:
    torch._dynamo.reset()
    record = compile_layers(pipe.language_model.layers, backend=backend)
    try:
        _ground_all(pipe, prep, runs)  # the compiling calls
        return _ground_all(pipe, prep, runs), record
    finally:
        uncompile_layers(pipe.language_model.layers)
        torch._dynamo.reset()


@pytest.mark.parametrize("backend", ["eager", pytest.param("aot_eager", marks=pytest.mark.slow)])
def test_compiled_layers_equal_the_eager_path(tiny_glamm, tiny_glamm_prep, backend):
    eager = _ground_all(tiny_glamm, tiny_glamm_prep)
    compiled, record = _compiled_outputs(tiny_glamm, tiny_glamm_prep, backend)
    assert record["backend"] == backend and record["dynamic"] is False
    for key, out in compiled.items():
        assert torch.equal(out.masks, eager[key].masks), key
        assert torch.equal(out.mask_logits, eager[key].mask_logits), key
        assert out.seq_len == eager[key].seq_len, key
    assert "forward" not in vars(tiny_glamm.language_model.layers[0])  # restored
    again = _ground_all(tiny_glamm, tiny_glamm_prep)
    assert all(torch.equal(again[k].mask_logits, eager[k].mask_logits) for k in eager)


@pytest.mark.slow
def test_inductor_compiled_layers_match_the_eager_path(tiny_glamm, tiny_glamm_prep):
    eager = _ground_all(tiny_glamm, tiny_glamm_prep, SLOW_RUNS)
    compiled, _ = _compiled_outputs(tiny_glamm, tiny_glamm_prep, "inductor", SLOW_RUNS)
    for key, out in compiled.items():
        torch.testing.assert_close(out.mask_logits, eager[key].mask_logits, rtol=1e-4, atol=1e-4)
        assert (out.masks != eager[key].masks).float().mean() < 1e-3, key


def test_cuda_uses_cuda_graphs_and_the_cpu_the_default_mode():
    assert default_mode("cuda") == "reduce-overhead" and default_mode("cpu") is None
