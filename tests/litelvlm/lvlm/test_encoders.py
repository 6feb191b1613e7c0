"""Captured image encoders (``litelvlm.lvlm.encoders``, ``--encoders``) equal the eager ones: on a CPU with
dynamo's eager backend (``compile-eager``) bit for bit, for every family's encoders (the prepared input: the
towers' tokens and SAM's features; then the masks); on CUDA as CUDA graphs of the eager kernels (``gpu``).
A hook inside an encoder, autograd, a dispatch mode or an input off the device run it eagerly, named."""

from __future__ import annotations

import contextlib
import gc
import weakref

import numpy as np
import pytest
import torch
from PIL import Image

from litelvlm.lvlm import encoders
from litelvlm.lvlm.encoders import Indexed, call_key, install, module_of, resolve_mode, runner_of, uninstall

RUNS = [("none", None), ("litelvlm", 16), ("fastv", 16)]


def _image(h: int = 97, w: int = 131) -> Image.Image:
    return Image.fromarray((np.random.default_rng(1).random((h, w, 3)) * 255).astype("uint8"))


def _outputs(pipe, image, runs=RUNS, sentences=("the dog on the left", "a cat")) -> tuple[object, dict]:
    with torch.no_grad():
        prep = pipe.prepare(image, list(sentences))
        return prep, {(m, k): pipe.ground(prep, m, k) for m, k in runs}


def _tensors(obj) -> list[torch.Tensor]:
    """Every tensor a prepared input holds (its dataclass fields, nested lists and traces)."""
    if isinstance(obj, torch.Tensor):
        return [obj]
    if isinstance(obj, (list, tuple)):
        return [t for o in obj for t in _tensors(o)]
    if isinstance(obj, dict):
        return [t for o in obj.values() for t in _tensors(o)]
    if hasattr(obj, "__dataclass_fields__"):
        return [t for f in obj.__dataclass_fields__ for t in _tensors(getattr(obj, f, None))]
    return []


def _assert_equal(got, want) -> None:
    (prep_g, out_g), (prep_w, out_w) = got, want
    tg, tw = _tensors(prep_g), _tensors(prep_w)
    assert len(tg) == len(tw) and tg
    for a, b in zip(tg, tw, strict=True):
        assert torch.equal(a, b)
    for key, out in out_g.items():
        assert torch.equal(out.masks, out_w[key].masks), key
        assert torch.equal(out.mask_logits, out_w[key].mask_logits), key


def _captured(pipe, mode: str = "compile-eager", **kw):
    torch._dynamo.reset()
    runner = install(pipe, mode)
    try:
        got = _outputs(pipe, _image(), **kw)
        counts = {type(e.module).__name__: dict(e.counts) for e in runner.encoders.values()}
        return got, runner.record(), counts
    finally:
        uninstall(pipe)
        torch._dynamo.reset()


def test_glamm_encoders_captured_equal_the_eager_ones(tiny_glamm):
    eager = _outputs(tiny_glamm, _image())
    got, record, counts = _captured(tiny_glamm)
    _assert_equal(got, eager)
    names = sorted(type(m).__name__ for m in tiny_glamm.encoder_modules() if m is not None)
    assert sorted(counts) == names and "SamVisionEncoder" in names
    assert all(c.get("captured", 0) >= 1 and not c.get("eager") for c in counts.values()), counts
    assert record == {"encoders": "compile-eager", "captured_encoders": names}
    # restored: the modules' own forward again, and the same outputs
    assert runner_of(tiny_glamm) is None
    assert all("forward" not in vars(m) for m in tiny_glamm.encoder_modules())
    _assert_equal(_outputs(tiny_glamm, _image()), eager)


def test_qwen_family_encoders_captured_equal_the_eager_ones(tiny_unipixel_pipe):
    """UniPixel (Qwen2.5-VL's tower, SAM 2's Hiera encoder, the paired CLIP loaded on first use: adopted)."""
    pipe, one = tiny_unipixel_pipe, ["the dog on the left"]
    eager = _outputs(pipe, _image(), sentences=one)
    got, _, counts = _captured(pipe, sentences=one)
    _assert_equal(got, eager)
    names = sorted(type(module_of(m)).__name__ for m in pipe.encoder_modules())
    assert sorted(counts) == names and len(counts) == 3
    assert all(c.get("captured", 0) >= 1 for c in counts.values()), counts


@pytest.mark.slow
@pytest.mark.parametrize("model", ["sa2va-tiny-random:0", "sa2va-internvl3-tiny-random:0",
                                   "sa2va-qwen3-vl-tiny-random:0"])
def test_the_other_families_encoders_captured_equal_the_eager_ones(model):
    from litelvlm.registry.families import load_pipeline

    pipe = load_pipeline(model)
    runs = [("none", None), ("fastv", 8)]
    eager = _outputs(pipe, _image(), runs, ["the dog on the left"])
    torch._dynamo.reset()
    install(pipe, "compile-eager")
    try:
        got = _outputs(pipe, _image(), runs, ["the dog on the left"])
    finally:
        uninstall(pipe)
    _assert_equal(got, eager)


def test_a_graph_records_the_qwen_tower_with_its_index_tensors(tiny_unipixel_pipe, monkeypatch):
    """The Qwen tower is declared ``Indexed``: its graph is recorded (here a stand-in that runs the function
    it would record) on the forward with the grid's index tensors given, once per grid, equal to the eager
    forward."""
    recorded = []

    class Recording:
        def __init__(self, fn, args, kwargs, pool, device) -> None:
            recorded.append(sorted(fn.keywords))
            self.fn = fn

        def __call__(self, args, kwargs):
            return self.fn(*args, **kwargs)

    monkeypatch.setattr(encoders, "_Graph", Recording)
    entry = tiny_unipixel_pipe.encoder_modules()[0]
    assert isinstance(entry, Indexed)
    tower, c = entry.module, entry.module.config
    enc = encoders.CapturedEncoder(tower, "graph", None, entry.index)
    grid = torch.tensor([[1, 10, 6]])
    x = torch.randn(60, c.in_channels * c.temporal_patch_size * c.patch_size ** 2)
    with torch.no_grad():
        got = [enc(x, grid_thw=grid).pooler_output for _ in range(2)]
        want = tower(x, grid_thw=grid).pooler_output
    assert recorded == [["cu_seqlens", "cu_window_seqlens", "position_ids", "window_index"]]
    assert all(torch.equal(g, want) for g in got) and dict(enc.counts) == {"captured": 2}


class _FakeCuda:
    """torch.cuda's recording API as no-ops on the CPU: a ``_Graph`` runs its function while "recording"."""

    class Stream:
        def wait_stream(self, other) -> None:
            pass

    class CUDAGraph:
        def replay(self) -> None:
            pass

    @staticmethod
    def graph(g, pool=None):
        return contextlib.nullcontext()

    @staticmethod
    def stream(s):
        return contextlib.nullcontext()

    @staticmethod
    def current_stream():
        return _FakeCuda.Stream()


def test_a_graph_keeps_the_index_tensors_it_recorded_alive(monkeypatch):
    """A replay reads the index tensors at the addresses the recording saw: the graph holds them for as long
    as it lives (freed, their memory is reused and the replay gathers out of bounds)."""
    for name in ("Stream", "CUDAGraph", "graph", "stream", "current_stream"):
        monkeypatch.setattr(torch.cuda, name, getattr(_FakeCuda, name))
    made = []

    def index(x):
        made.append(torch.arange(x.shape[-1]))
        return {"order": made[-1]}

    class Gather(torch.nn.Linear):
        def forward(self, x, order=None):
            return super().forward(x[..., order])

    enc = encoders.CapturedEncoder(Gather(3, 2), "graph", None, index)
    with torch.no_grad():
        enc(torch.ones(1, 3))
    alive = weakref.ref(made[0])
    made.clear()
    gc.collect()
    assert alive() is not None and dict(enc.counts) == {"captured": 1}


def test_a_hook_inside_an_encoder_runs_it_eagerly_and_says_why(tiny_glamm):
    vision = tiny_glamm.clip.modules().vision_model
    seen = []
    handle = next(m for m in vision.modules() if m is not vision).register_forward_hook(
        lambda m, a, o: seen.append(1))
    runner = install(tiny_glamm, "compile-eager")
    try:
        _outputs(tiny_glamm, _image(), [("none", None)])
        reasons = runner.eager_reasons()
    finally:
        handle.remove()
        uninstall(tiny_glamm)
    assert seen, "the hook ran"
    why = "hooks inside the encoder (an attention reader or a quantization wrapper)"
    assert reasons == {f"{type(vision).__name__}: {why}": 1}


def test_autograd_and_dispatch_modes_run_eagerly(tiny_glamm):
    from torch.utils.flop_counter import FlopCounterMode

    sam = tiny_glamm.model.sam.vision_encoder
    x = torch.zeros(1, 3, *sam.config.image_size * np.ones(2, dtype=int), dtype=tiny_glamm.dtype)
    runner = install(tiny_glamm, "compile-eager")
    try:
        with torch.no_grad(), FlopCounterMode(display=False):
            sam(x)
        with torch.enable_grad():
            sam(x)
        reasons = runner.eager_reasons()
    finally:
        uninstall(tiny_glamm)
    assert set(reasons) == {"SamVisionEncoder: a tensor-tracking dispatch mode (a FLOP count or a memory "
                            "measurement)", "SamVisionEncoder: autograd enabled"}


def test_a_capture_is_keyed_by_shapes_and_small_integer_values():
    x, grid = torch.zeros(4, 8), torch.tensor([[1, 2, 2]])
    same = call_key((torch.ones(4, 8),), {"grid": torch.tensor([[1, 2, 2]])})
    assert call_key((x,), {"grid": grid}) == same
    assert call_key((x,), {"grid": grid}) != call_key((x,), {"grid": torch.tensor([[1, 4, 1]])})  # same shape
    assert call_key((x,), {}) != call_key((torch.zeros(8, 4),), {})
    assert call_key((x,), {"flag": True}) != call_key((x,), {"flag": False})
    with pytest.raises(encoders._Unkeyable):
        call_key((x,), {"a": [[1]]} | {"b": {1, 2}})


def test_modes_resolve_per_device_and_graphs_need_cuda():
    assert resolve_mode("auto", "cpu") == "eager" and resolve_mode("auto", "cuda") == "graph"
    with pytest.raises(ValueError, match="needs a CUDA device"):
        resolve_mode("graph", "cpu")
    with pytest.raises(ValueError, match="encoders must be one of"):
        resolve_mode("fast", "cpu")


def test_a_module_inside_a_captured_one_is_left_to_it():
    outer = torch.nn.Sequential(torch.nn.Linear(2, 2), torch.nn.Linear(2, 2))
    runner = encoders.CapturedEncoders([outer[0], outer], "compile-eager")
    assert [e.module for e in runner.encoders.values()] == [outer]
    assert "forward" not in vars(outer[0]) and "forward" in vars(outer)
    runner.remove()
    assert "forward" not in vars(outer)


def test_encoders_graph_off_cuda_is_refused_with_one_line(tmp_path, toy_refer, capsys):
    from litelvlm.cli import main

    rc = main(["validate", "--model", "tiny-random:0", "--refer-dir", str(toy_refer), "--encoders", "graph",
               "--out", str(tmp_path / "v")])
    assert rc == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--encoders graph" in err[0] and "cuda" in err[0]
    assert not (tmp_path / "v").exists()


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
@pytest.mark.parametrize("model", ["tiny-random:0", "unipixel-tiny-random:0",
                                   "sa2va-internvl3-tiny-random:0", "sa2va-qwen3-vl-tiny-random:0"])
def test_cuda_graph_encoders_equal_the_eager_ones_on_cuda(model):
    """CUDA graphs replay the eager kernels: the prepared input and the masks equal the eager path's (a
    second call replays; every encoder is captured, the Qwen towers with their grid's index tensors computed
    ahead of the call)."""
    from litelvlm.registry.families import load_pipeline

    pipe = load_pipeline(model, device="cuda", dtype=torch.bfloat16)
    one = ["the dog on the left"]
    eager = _outputs(pipe, _image(), sentences=one)
    runner = install(pipe, "graph")
    try:
        _outputs(pipe, _image(), sentences=one)   # records the graphs
        got = _outputs(pipe, _image(), sentences=one)
        print(model, {type(e.module).__name__: dict(e.counts) for e in runner.encoders.values()},
              dict(runner.eager_reasons()))
    finally:
        uninstall(pipe)
    _assert_equal(got, eager)
    captured = {type(e.module).__name__ for e in runner.encoders.values() if e.counts["captured"]}
    # the towers that read no tensor's values on the host are captured (GLaMM: CLIP's and SAM's, whose
    # relative positions are made on the device while it records)
    assert captured >= {"SamVisionEncoder", "Sam2VisionModel", "InternVLVisionModel", "CLIPVisionModel",
                        "Qwen2_5_VisionTransformerPretrainedModel", "Qwen3VLVisionModel"} & {
        type(e.module).__name__ for e in runner.encoders.values()}, dict(runner.eager_reasons())
    assert not runner.eager_reasons(), dict(runner.eager_reasons())
