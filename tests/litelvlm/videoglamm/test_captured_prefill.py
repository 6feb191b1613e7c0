"""VideoGLaMM under the captured prefill (``--prefill captured``, ``litelvlm.lvlm.captured``), the slow cases: FastV's
two segments, a per-frame CLIP-side method and the efficiency study's timed prefill give the eager path's masks
exactly and its logits within bfloat16 rounding, as the other families' captured prefills (tests/litelvlm/lvlm/
test_compiled_prefill.py). The default representative (``ground(none)`` and ``segment_clip``) is in test_family.py.
On a CPU the capture is ``torch.compile`` with dynamo's ``eager`` backend."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from litelvlm.families import load_pipeline

MODEL = "videoglamm-tiny-random:0"
#: bfloat16's rounding of a mask logit (the CUDA tests' tolerance); the CPU captures here are bit-equal in fact
BF16 = {"rtol": 2e-2, "atol": 2e-2}


@pytest.fixture(scope="module")
def pipe():
    return load_pipeline(MODEL)


@pytest.fixture(scope="module")
def prep(pipe, tmp_path_factory):
    from litelvlm.video.datasets import load_ref_davis
    from litelvlm.video.synthetic import write_synthetic_videos

    root = write_synthetic_videos(tmp_path_factory.mktemp("vf") / "syn", videos=1, frames=2, size=(40, 32), seed=0)
    rec = load_ref_davis(root)[0]
    return pipe.prepare([np.asarray(rec.frame(i)) for i in range(len(rec.frames))], [rec.sentence])


def _captured(pipe, runs):
    """(outputs of ``runs()`` under a captured prefill, the runner), uninstalled after."""
    from litelvlm.lvlm.captured import install, uninstall

    torch._dynamo.reset()
    runner = install(pipe.language_model, "compile", backend="eager")
    try:
        with torch.no_grad():
            return runs(), runner
    finally:
        uninstall(pipe.language_model)
        torch._dynamo.reset()


def _same(got: torch.Tensor, want: torch.Tensor) -> None:
    assert torch.equal(got > 0, want > 0)
    torch.testing.assert_close(got, want, **BF16)


@pytest.mark.slow
def test_methods_and_the_efficiency_prefill_through_the_captured_stack(pipe, prep):
    """FastV in two segments (layers before and after its layer, on the kept tokens), a per-frame CLIP-side method,
    and the efficiency study's timed prefill (``TimedParts.run_prefill``: logits of every position)."""
    from litelvlm.videoglamm.cost_timing import TimedParts

    runs = [("fastv", 81), ("litelvlm", 81)]
    with torch.no_grad():
        eager = {r: pipe.ground(prep, *r) for r in runs}
    out, runner = _captured(pipe, lambda: {r: pipe.ground(prep, *r) for r in runs})
    assert runner.counts == {"captured": 2 * len(pipe.language_model.layers)} and not runner.eager  # FastV's pieces
    for r in runs:
        assert torch.equal(out[r].masks, eager[r].masks), r
        _same(out[r].mask_logits, eager[r].mask_logits)
    parts = TimedParts.__new__(TimedParts)
    parts.model, parts.preset, parts.device, parts.dtype = pipe.model, pipe.model.preset, pipe.device, pipe.dtype
    with torch.no_grad():
        want = parts.run_prefill(40)
    got, runner = _captured(pipe, lambda: parts.run_prefill(40))
    assert runner.counts == {"captured": len(pipe.language_model.layers)} and got.shape == want.shape
    torch.testing.assert_close(got, want, **BF16)
