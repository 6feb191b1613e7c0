"""The compiled prefill (``litelvlm.llm.compiled``, ``validate --compile``) equals the eager path: the same
masks and mask logits for the unpruned model, a CLIP-side method and a method that prunes inside the LLM. The
default suite compiles with dynamo's ``eager`` backend (the layers traced by dynamo and replayed: bit for
bit); ``aot_eager`` (also bit for bit) and inductor's fused CPU kernels (compared within rounding: their sums
may associate differently) are ``slow``-marked: compiling takes minutes on 2 cores."""

from __future__ import annotations

import pytest
import torch

from litelvlm.llm.compiled import compile_layers, default_mode, uncompile_layers

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


def test_per_layer_compile_uses_no_cuda_graphs():
    """Per-layer ``reduce-overhead`` crashed on CUDA (one layer's graph output overwritten before the next
    layer read it): ``--compile`` uses the default mode everywhere; CUDA graphs are the captured prefill's, of
    the whole stack."""
    assert default_mode("cuda") is None and default_mode("cpu") is None


# -- the captured prefill (litelvlm.llm.captured, ``--prefill captured``): whole segments between pruning
# points --

def _captured_outputs(pipe, prep, runs, warm: bool = True, **capture) -> tuple[dict, dict, object]:
    """(outputs, {run: decoder-loop spans seen by the timer}, the runner) of ``runs`` under a captured prefill
    (``warm``: after a first, capturing, call of each)."""
    from litelvlm.cost.timing import LayerLoopTimer
    from litelvlm.llm.captured import install, uninstall

    torch._dynamo.reset()
    runner = install(pipe.language_model, **capture)
    try:
        if warm:
            _ground_all(pipe, prep, runs)  # the capturing calls
            runner.reset_counts()
        outs, spans = {}, {}
        with torch.no_grad():
            for run in runs:
                with LayerLoopTimer(pipe.language_model.layers) as timer:
                    outs[run] = pipe.ground(prep, *run)
                spans[run] = timer.forwards
        return outs, spans, runner
    finally:
        uninstall(pipe.language_model)
        torch._dynamo.reset()


def _assert_equal_outputs(got: dict, want: dict) -> None:
    for key, out in got.items():
        assert torch.equal(out.masks, want[key].masks), key
        assert torch.equal(out.mask_logits, want[key].mask_logits), key
        assert out.seq_len == want[key].seq_len and torch.equal(out.seg_positions,
                                                                want[key].seg_positions), key


def test_captured_prefill_equals_the_eager_path(tiny_glamm, tiny_glamm_prep):
    """The whole stack as one compiled function (dynamo's ``eager`` backend: bit for bit): ``none`` through
    the family's LLM forward, FastV as two segments (layers 0..K-1, then K.. on the kept tokens); every layer
    call was captured, and the prefill timer's observer hooks still see one decoder-loop span per call."""
    eager = _ground_all(tiny_glamm, tiny_glamm_prep)
    captured, spans, runner = _captured_outputs(tiny_glamm, tiny_glamm_prep, RUNS, False, capture="compile",
                                                backend="eager")
    _assert_equal_outputs(captured, eager)
    layers = len(tiny_glamm.language_model.layers)
    assert runner.counts == {"captured": 2 * layers} and runner.path() == "captured" and not runner.eager
    assert spans == {run: 1 for run in RUNS}
    assert runner.record() == {"prefill": "captured", "capture": "compile",
                               "segments": "layers between pruning points", "backend": "eager",
                               "mode": "default"}
    again = _ground_all(tiny_glamm, tiny_glamm_prep)  # uninstalled: the eager path again
    assert all(torch.equal(again[k].mask_logits, eager[k].mask_logits) for k in eager)


def test_fused_capture_equals_the_eager_path_with_one_compile_for_every_layer(tiny_glamm, tiny_glamm_prep):
    """``--capture fused`` (the default on CUDA): every decoder layer through ONE compiled layer function
    (dynamo's ``eager`` backend here: bit for bit), so each sequence length compiles one layer's graph, not
    the stack's: ``none`` and FastV's two lengths make 2 graphs, however many layers the LLM has."""
    from torch._dynamo.utils import counters

    eager = _ground_all(tiny_glamm, tiny_glamm_prep)
    counters.clear()
    captured, spans, runner = _captured_outputs(tiny_glamm, tiny_glamm_prep, RUNS, False, capture="fused",
                                                backend="eager")
    graphs = counters["stats"]["unique_graphs"]
    _assert_equal_outputs(captured, eager)
    layers = len(tiny_glamm.language_model.layers)
    # FastV's pruned length; none's full length (FastV's first part)
    assert layers > 1 and graphs == 2, graphs
    assert runner.counts == {"captured": 2 * layers} and runner.path() == "captured"
    assert spans == {run: 1 for run in RUNS}
    assert runner.record() == {"prefill": "captured", "capture": "fused",
                               "segments": "layers between pruning points", "backend": "eager",
                               "mode": "default"}


def test_fused_is_the_captured_default_on_cuda_and_compile_elsewhere():
    from litelvlm.llm.captured import CAPTURES, default_capture

    assert default_capture("cuda") == "fused" and default_capture("cpu") == "compile"
    assert set(CAPTURES) == {"graph", "fused", "compile"}


def test_layers_carrying_other_hooks_run_eagerly_and_say_why(tiny_glamm):
    """A hook inside a layer (an attention reader) splits the segment around that layer, which runs eagerly;
    hooks that change a layer's inputs (``--layer-dtype float32``'s upcast) make every such layer eager; a
    forward for autograd runs eagerly; only observers (``observes_only``) are called around a captured
    segment."""
    from litelvlm.llm.captured import install, uninstall
    from litelvlm.lvlm.upcast import upcast_layers

    lm = tiny_glamm.language_model
    runner = install(lm, "compile", backend="eager")
    try:
        assert runner.pieces(0, 4) == [(0, 4, None)]
        handle = lm.layers[1].self_attn.register_forward_hook(lambda *a: None)
        pieces = runner.pieces(0, 4)
        handle.remove()
        assert [p[:2] for p in pieces] == [(0, 1), (1, 2), (2, 4)] and "inside a decoder layer" in pieces[1][
            2]
        assert pieces[0][2] is None and pieces[2][2] is None
        handles = upcast_layers(lm.layers)
        try:
            assert all("upcast" in why for _, _, why in runner.pieces(0, 4))
        finally:
            for h in handles:
                h.remove()
        hidden = torch.randn(1, 5, lm.config.hidden_size, requires_grad=True)
        from litelvlm.llm.context import run_layers

        with torch.enable_grad():
            run_layers(lm, hidden, torch.arange(5)[None])
        assert runner.path() == "eager" and "autograd" in next(iter(runner.eager))
    finally:
        uninstall(lm)


def test_a_segment_that_cannot_be_captured_runs_eagerly_and_says_why(tiny_glamm, monkeypatch, caplog):
    """A CUDA graph capture that fails (an operation that cannot be captured) is tried once per segment and
    length; the segment then runs eagerly, with the same result, and the reason is counted and logged."""
    from litelvlm.llm import captured
    from litelvlm.llm.context import call_layers, causal_mask, run_layers

    tries = []

    def refuse(*args):
        tries.append(1)
        raise RuntimeError("operation not permitted when stream is capturing\nmore")

    monkeypatch.setattr(captured, "_Graph", refuse)
    lm = tiny_glamm.language_model
    # install() refuses graphs off CUDA: the runner itself here
    runner = captured.CapturedPrefill(lm, "graph")
    lm.__dict__[captured.ATTR] = runner
    hidden, pos = torch.randn(1, 5, lm.config.hidden_size), torch.arange(5)[None]
    try:
        with torch.no_grad():
            got = [run_layers(lm, hidden, pos) for _ in range(2)]
            want = call_layers(lm.layers, hidden, causal_mask(lm, hidden, pos), lm.rotary_emb(hidden, pos),
                               pos)
    finally:
        captured.uninstall(lm)
    assert len(tries) == 1 and all(torch.equal(g, want) for g in got)
    [(why, calls)] = runner.eager.items()
    assert why == "CUDA graph capture failed (operation not permitted when stream is capturing)"
    assert calls == 2 * len(lm.layers) and runner.path() == "eager" and "they run eagerly" in caplog.text


def test_cuda_graphs_need_cuda_and_each_device_has_its_capture(tiny_glamm):
    from litelvlm.llm.captured import default_capture, install

    assert default_capture("cuda") == "fused" and default_capture("cpu") == "compile"
    with pytest.raises(ValueError, match="CUDA device"):
        install(tiny_glamm.language_model, "graph")
    assert "_captured_prefill" not in vars(tiny_glamm.language_model)


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["aot_eager", "inductor"])
def test_captured_prefill_with_cpu_compilers_matches_the_eager_path(tiny_glamm, tiny_glamm_prep, backend):
    eager = _ground_all(tiny_glamm, tiny_glamm_prep, SLOW_RUNS)
    captured, _, runner = _captured_outputs(tiny_glamm, tiny_glamm_prep, SLOW_RUNS, capture="compile",
                                            backend=backend)
    assert runner.path() == "captured"
    for key, out in captured.items():
        if backend == "aot_eager":
            assert torch.equal(out.mask_logits, eager[key].mask_logits), key
        torch.testing.assert_close(out.mask_logits, eager[key].mask_logits, rtol=1e-4, atol=1e-4)
        assert (out.masks != eager[key].masks).float().mean() < 1e-3, key


@pytest.mark.slow
@pytest.mark.parametrize("model", ["unipixel-tiny-random:0", "sa2va-tiny-random:0"])
def test_captured_prefill_of_the_qwen_families_equals_the_eager_path(model):
    """M-RoPE families: the unpruned forward and the methods pruning inside the LLM (FastV, DART, SparseVLM's
    stages) through captured segments, bit for bit."""
    import numpy as np
    from PIL import Image

    from litelvlm.registry.families import load_pipeline

    pipe = load_pipeline(model)
    image = Image.fromarray((np.random.default_rng(1).random((97, 131, 3)) * 255).astype("uint8"))
    prep = pipe.prepare(image, ["the dog on the left"])
    k = pipe.num_visual(prep) // 3
    runs = [("none", None), ("fastv", k), ("dart", k), ("sparsevlm", k)]
    eager = _ground_all(pipe, prep, runs)
    captured, _, runner = _captured_outputs(pipe, prep, runs, capture="compile", backend="eager")
    _assert_equal_outputs(captured, eager)
    assert runner.path() == "captured"


def _cuda_pipe():
    from litelvlm.glamm import GlammPipeline

    return GlammPipeline.from_model_string("tiny-random:0", device="cuda", dtype=torch.bfloat16)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
@pytest.mark.parametrize("capture", ["graph", "fused", "compile"])
def test_captured_prefill_on_cuda_matches_the_eager_path(capture, coco128):
    """On CUDA (bfloat16): CUDA graphs of the eager layers (static buffers, one shared pool),
    torch.compile's ``reduce-overhead`` of the whole stack or the fused capture (inductor's layer,
    graphed) give the eager path's logits within bfloat16 rounding and its masks but for pixels whose
    logit is within that rounding of 0 (inductor's fused kernels associate bfloat16 sums differently: on
    the random tiny model 0.3% of the unpruned mask's pixels flipped, each with |logit| under the
    tolerance); a second call at the same length replays (its output is a copy: the first one's survives)."""
    from litelvlm.data.refer import load_refer

    pipe = _cuda_pipe()
    records = load_refer(coco128, None, split="all")
    first = [r for r in records if r.image_id == records[0].image_id][:2]
    prep = pipe.prepare(first[0].image(), [r.sentence for r in first])
    runs = [("none", None), ("litelvlm", 64), ("fastv", 64)]
    eager = _ground_all(pipe, prep, runs)
    captured, spans, runner = _captured_outputs(pipe, prep, runs, capture=capture)
    assert runner.path() == "captured" and spans == {run: 1 for run in runs}
    for key, out in captured.items():
        torch.testing.assert_close(out.mask_logits, eager[key].mask_logits, rtol=2e-2, atol=2e-2)
        flipped = out.masks != eager[key].masks
        print(f"{capture} {key}: {int(flipped.sum())} of {flipped.numel()} mask pixels differ")
        near_zero = eager[key].mask_logits.float().abs() <= 2e-2 + 2e-2 * out.mask_logits.float().abs()
        assert not (flipped & ~near_zero.reshape(flipped.shape)).any(), key


def test_eager_layer_calls_are_named_once_per_reason_with_their_runs(tiny_glamm):
    """``CapturedPrefill.account``: the eager calls since the last account go to the runs named; a command
    prints ``eager_lines`` once at its end: one line per reason with each run once, however many rounds ran
    it; the accounts of several captured prefills (one per attention) merge."""
    from litelvlm.llm.captured import eager_lines, install, merge_eager_runs, uninstall
    from litelvlm.llm.context import run_layers

    lm = tiny_glamm.language_model
    runner = install(lm, "compile", backend="eager")
    hidden, pos = torch.randn(1, 5, lm.config.hidden_size, requires_grad=True), torch.arange(5)[None]
    try:
        for run in ("none@576", "fastv@64", "none@576"):  # two rounds of none
            with torch.enable_grad():
                run_layers(lm, hidden, pos)
            runner.account(run)
        runner.account("litelvlm@64")  # nothing ran eagerly since the last account: not named
    finally:
        uninstall(lm)
    [(why, runs)] = runner.eager_runs.items()
    assert "autograd" in why and runs == ["none@576", "fastv@64"] and not runner.eager
    assert eager_lines(runner.eager_runs) == ["--prefill captured: decoder-layer calls ran eagerly for "
                                              f"{why}: none@576, fastv@64"]
    assert merge_eager_runs(runner.eager_runs, {why: ["fastv@64", "dart@64"]}, {"other": ["x@1"]}) == {
        why: ["none@576", "fastv@64", "dart@64"], "other": ["x@1"]}
    assert eager_lines({}) == []
