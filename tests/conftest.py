"""Shared fixtures: tiny random CLIP models saved to disk, and the shared real data."""

from __future__ import annotations

import gc
import os
from pathlib import Path

import pytest

import tests
from litelvlm.machine.allocator import child_tunables, keep_freed_memory
from litelvlm.machine.collector import THRESHOLDS

# glibc keeps freed blocks for the next tensor, as the litelvlm command has it, here and in the processes the
# tests start (official sides under their pins, notebook kernels): the same numbers, far fewer page faults.
keep_freed_memory()
os.environ.setdefault("GLIBC_TUNABLES", child_tunables())
# Python's cycle collector runs rarer, as during a litelvlm command (litelvlm.machine.collector), and leaves
# out what imports and collection made (pytest_collection below): 8% of a worker's CPU time went to it.
gc.set_threshold(*THRESHOLDS)

ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("LITELVLM_SHARED_DATA", ROOT.parent / "shared" / "data"))


def is_xdist_controller(config) -> bool:
    """Whether this process hands the tests to xdist workers and runs none itself."""
    return not hasattr(config, "workerinput") and getattr(config.option, "dist", "no") != "no"


def pytest_configure(config) -> None:
    """A process that runs tests imports torch here, before any test module: one intra-op thread per xdist
    worker (two workers on two cores), two when the suite runs in one process; the xdist controller runs no
    test and never imports torch, so the workers start sooner. A worker (``config.workerinput``)
    ends without the interpreter's teardown (``tests/__init__.py``)."""
    if is_xdist_controller(config):
        return
    import torch

    torch.set_num_threads(1 if hasattr(config, "workerinput") else max(1, min(2, os.cpu_count() or 1)))
    if hasattr(config, "workerinput"):
        tests.end_as_worker()


@pytest.hookimpl(wrapper=True)
def pytest_collection(session):
    """The collector, off since ``tests/__init__.py``, stays off while the test modules are imported; then one
    pass, what is left (modules, fixtures, test items) frozen (never garbage, never walked again), and the
    collector on."""
    gc.disable()
    try:
        return (yield)
    finally:
        gc.collect()
        gc.freeze()
        gc.enable()


@pytest.fixture(scope="session", autouse=True)
def _isolated_cache(tmp_path_factory):
    """Keep the disk cache (random models, features) inside the test session."""
    os.environ.setdefault("LITELVLM_CACHE", str(tmp_path_factory.mktemp("cache")))
    os.environ.setdefault("HF_HUB_OFFLINE", "1")


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """``../shared/data``; tests that need it skip with the reason when it is absent."""
    if not (SHARED / "coco128_refer" / "instances.json").exists():
        pytest.skip(f"real test data not found at {SHARED} (set LITELVLM_SHARED_DATA)")
    return SHARED


@pytest.fixture(scope="session")
def coco128(shared_data) -> Path:
    return shared_data / "coco128_refer"


@pytest.fixture(scope="session")
def official(tmp_path_factory):
    """The official code in ``../shared/official`` (``tests/official_code.py``); skips only when ``../shared``
    is absent."""
    from tests.official_code import open_official

    return open_official(tmp_path_factory.mktemp("official"))


@pytest.fixture(scope="session")
def tiny_hf_clip_dir(tmp_path_factory) -> Path:
    """A random tiny OpenAI-architecture CLIP written by ``save_pretrained`` (grid 4x4)."""
    from litelvlm.clip.random_init import save_random_hf_clip

    return save_random_hf_clip(tmp_path_factory.mktemp("tiny_hf_clip"), "tiny", seed=0)


@pytest.fixture(scope="session")
def tiny_open_clip_dir(tiny_hf_clip_dir, tmp_path_factory) -> Path:
    """The SAME weights as ``tiny_hf_clip_dir``, converted to open_clip's layout (local-dir)."""
    from safetensors.torch import load_file

    from litelvlm.clip.convert import hf_to_open_clip
    from litelvlm.clip.random_init import ARCHS, save_open_clip_dir

    sd = load_file(str(tiny_hf_clip_dir / "model.safetensors"))
    return save_open_clip_dir(tmp_path_factory.mktemp("tiny_open_clip"), ARCHS["tiny"], hf_to_open_clip(sd))


@pytest.fixture(scope="session")
def tiny_hf_clip(tiny_hf_clip_dir):
    from litelvlm.clip import load_clip

    return load_clip(str(tiny_hf_clip_dir), "hf")


@pytest.fixture(scope="session")
def session_folders(tmp_path_factory):
    """``made_once(name, make)``: the folder ``name`` that ``make(folder)`` fills, made once per test session
    and shared by the xdist workers (``tests/fixtures/shared_folders.py``)."""
    from tests.fixtures.shared_folders import made_once, shared_base

    shared = shared_base(tmp_path_factory.getbasetemp())
    return lambda name, make: made_once(shared, name, make)


@pytest.fixture(scope="session")
def smoke_figures(session_folders):
    """``build(name)``: the folder of ``litelvlm figures --smoke --figure-set NAME``, made once per test
    session, shared by the xdist workers (:func:`session_folders`)."""
    from litelvlm.cli import main

    def make(name: str, tmp: Path) -> None:
        assert main(["figures", "--smoke", "--figure-set", name, "--out", str(tmp)]) == 0

    return lambda name: session_folders(f"smoke-figures-{name}", lambda tmp: make(name, tmp))


_GLAMM_PIPES: dict = {}


@pytest.fixture
def one_glamm_pipeline(monkeypatch):
    """Load each tiny random GLaMM once per test session: ``GlammPipeline.from_model_string`` is
    wrapped so that repeated CLI runs in a test module reuse the loaded pipeline."""
    from litelvlm.glamm import GlammPipeline

    real = GlammPipeline.from_model_string.__func__

    def cached(cls, model, clip=None, sam=None, device="cpu", dtype=None, numerics=None, quantize="none",
               quantize_backend="bitsandbytes", layer_dtype="model", **kw):
        key = (model, clip, sam, str(device), str(dtype), numerics, quantize, quantize_backend, layer_dtype,
               tuple(sorted((k, str(v)) for k, v in kw.items())))
        if key not in _GLAMM_PIPES:
            _GLAMM_PIPES[key] = real(cls, model, clip=clip, sam=sam, device=device, numerics=numerics,
                                     quantize=quantize, quantize_backend=quantize_backend,
                                     layer_dtype=layer_dtype, **({"dtype": dtype} if dtype else {}), **kw)
        return _GLAMM_PIPES[key]

    monkeypatch.setattr(GlammPipeline, "from_model_string", classmethod(cached))


@pytest.fixture(scope="module")
def tiny_glamm():
    """The tiny random GLaMM (``tiny-random:0``), loaded once per test module."""
    from litelvlm.glamm import GlammPipeline

    return GlammPipeline.from_model_string("tiny-random:0")


@pytest.fixture(scope="module")
def tiny_glamm_bf16():
    """The tiny random GLaMM (``tiny-random:0``) in bfloat16, loaded once per test module."""
    import torch

    from litelvlm.glamm import GlammPipeline

    return GlammPipeline.from_model_string("tiny-random:0", dtype=torch.bfloat16)


@pytest.fixture(scope="module")
def tiny_unipixel_pipe():
    """The tiny random UniPixel (``unipixel-tiny-random:0``) through the family registry, once per test
    module."""
    from litelvlm.registry.families import load_pipeline

    return load_pipeline("unipixel-tiny-random:0")


@pytest.fixture(scope="module")
def tiny336_clip():
    """The tiny random 336-pixel CLIP (``tiny336-random:0``, transformers backend), once per test module."""
    from litelvlm.clip import load_clip

    return load_clip("tiny336-random:0", "hf")


@pytest.fixture(scope="module")
def tiny_open_clip(tiny_open_clip_dir):
    """:func:`tiny_open_clip_dir` loaded through open_clip, once per test module."""
    from litelvlm.clip import load_clip

    return load_clip(f"local-dir:{tiny_open_clip_dir}", "open_clip")


@pytest.fixture(scope="module")
def toy_refer(tmp_path_factory) -> Path:
    """Two synthetic scenes in the REFER layout (no shared data needed), written once per test module."""
    from litelvlm.toy.refer_layout import write_refer

    return write_refer(tmp_path_factory.mktemp("toy") / "refer", 2, size=64)


@pytest.fixture(scope="module")
def tiny_glamm_prep(tiny_glamm, coco128):
    """The first COCO-128 image with its first two sentences, prepared on :func:`tiny_glamm`."""
    from litelvlm.data.refer import load_refer

    records = load_refer(coco128, None, split="all")
    first = [r for r in records if r.image_id == records[0].image_id][:2]
    return tiny_glamm.prepare(first[0].image(), [r.sentence for r in first])


@pytest.fixture
def fresh_cache(tmp_path, monkeypatch) -> Path:
    """An empty disk cache (``LITELVLM_CACHE``) of this test alone."""
    monkeypatch.setenv("LITELVLM_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache"


@pytest.fixture(scope="module")
def official_clip_towers(pipe):
    """The official LiteLVLM's towers (``load_model`` L33-46) from the folder of the CLIP paired with the test
    module's ``pipe``, 4.28's eager attention (``litelvlm.clip.attention``): (vision, text, tokenizer)."""
    from transformers import AutoTokenizer, CLIPTextModelWithProjection, CLIPVisionModelWithProjection

    from litelvlm.clip import resolve_random_model
    from litelvlm.clip.attention import register

    folder = resolve_random_model(pipe.clip.name, "hf")
    kw = {"dtype": pipe.dtype, "attn_implementation": register()}
    return (CLIPVisionModelWithProjection.from_pretrained(folder, **kw).eval(),
            CLIPTextModelWithProjection.from_pretrained(folder, **kw).eval(),
            AutoTokenizer.from_pretrained(folder))


#: methods registered only for tests by :func:`unoffered_methods`: a CLIP-grid method without a Qwen2.5-VL
#: variant, and one whose position rule is one-axis, which the unipixel family refuses with their reasons
UNOFFERED = {"clip-grid-only": ("per-token scores", ("litelvlm.methods.vispruner", "VISPRUNER")),
             "one-axis-only": ("1-D RoPE", ("litelvlm.methods.sparsevlm", "SPARSEVLM"))}


@pytest.fixture
def unoffered_methods(monkeypatch):
    """{name: the reason's words} of two test-only methods the unipixel family refuses (every registered
    method runs on it through its Qwen2.5-VL variant), so a study's refusal can be tested whatever the
    variants cover."""
    from litelvlm import methods
    from litelvlm.lazy import Lazy

    for name, (_, target) in UNOFFERED.items():
        monkeypatch.setitem(methods.TABLE, name, methods.Entry(
            Lazy(*target), f"{name}: a test-only method the unipixel family refuses"))
    monkeypatch.setattr(methods, "_LOADED", {})
    return {name: why for name, (why, _) in UNOFFERED.items()}


def pytest_collection_modifyitems(config, items):
    """Tests marked ``early`` first (xdist hands them out at the start, so the two workers end together);
    GPU tests skip, with the reason, where no CUDA device is present."""
    import torch

    items.sort(key=lambda item: item.get_closest_marker("early") is None)   # stable: the rest keep theirs
    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs a CUDA GPU (none present)")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(autouse=True)
def _quantization_backends_importable():
    """A command run in-process hides the quantization back-ends from later imports
    (``litelvlm.cli.defer_quantization_backends``); after each test they are importable again, so a test that
    imports bitsandbytes or torchao itself never skips because another test ran a command first."""
    yield
    import sys

    for name in ("bitsandbytes", "torchao"):
        if name in sys.modules and sys.modules[name] is None:
            del sys.modules[name]

# --cpu-durations FILE: each test's CPU seconds (setup + call + teardown, this process and the children it
# waited for; and the children's part alone), written as a TSV sorted by CPU time; CPU time depends far less
# than wall time on what else the machine runs. Under xdist each worker measures its own tests and the
# controller gathers them from the reports.
def pytest_addoption(parser):
    parser.addoption("--cpu-durations", metavar="FILE", default=None,
                     help="write each test's CPU seconds and wall seconds (setup+call+teardown) to FILE as a "
                     "TSV")


def _cpu_seconds() -> tuple[float, float]:
    """CPU seconds of this process and of the children it waited for."""
    import resource

    own, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime, kids.ru_utime + kids.ru_stime


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_protocol(item, nextitem):
    """With ``--cpu-durations``: note the CPU and wall clocks before the test's setup."""
    if not item.config.getoption("cpu_durations"):
        yield
        return
    import time

    cpu, wall = _cpu_seconds(), time.perf_counter()
    item._cpu_start = (cpu, wall)
    yield


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """After the teardown: the seconds since the setup, as user properties (they travel from xdist
    workers)."""
    start = getattr(item, "_cpu_start", None)
    if start is not None and call.when == "teardown":
        import time

        own, kids = _cpu_seconds()
        item.user_properties.append(("cpu_s", own + kids - sum(start[0])))
        item.user_properties.append(("children_cpu_s", kids - start[0][1]))
        item.user_properties.append(("wall_s", time.perf_counter() - start[1]))
    yield


_CPU_ROWS: dict = {}  # node id -> (CPU s, of which children's, wall s, outcome)
_NOT_PASSED: dict = {}  # node id -> the outcome of its first phase that did not pass


def pytest_runtest_logreport(report):
    """Gather the measured seconds (under xdist: in the controller, from the workers' reports)."""
    props = dict(report.user_properties)
    if report.outcome != "passed":
        _NOT_PASSED.setdefault(report.nodeid, report.outcome)
    if report.when == "teardown" and "cpu_s" in props:
        _CPU_ROWS[report.nodeid] = (props["cpu_s"], props["children_cpu_s"], props["wall_s"],
                                    _NOT_PASSED.pop(report.nodeid, "passed"))


def pytest_sessionfinish(session):
    """Write ``--cpu-durations``' TSV, slowest first (once, from the controller under xdist). A worker freezes
    what is left instead: it ends without the teardown (nothing is freed), so pytest's closing collections
    (its unraisable-exception check, twice, at the run's tail) walk no heap."""
    if hasattr(session.config, "workerinput"):
        gc.freeze()
        return
    path = session.config.getoption("cpu_durations", None)
    if not path or os.environ.get("PYTEST_XDIST_WORKER"):
        return
    rows = sorted(_CPU_ROWS.items(), key=lambda kv: -kv[1][0])
    lines = ["cpu_s\tchildren_cpu_s\twall_s\toutcome\tnodeid"] + [
        f"{c:.2f}\t{k:.2f}\t{w:.2f}\t{o}\t{n}" for n, (c, k, w, o) in rows]
    Path(path).write_text("\n".join(lines) + "\n")


@pytest.fixture(scope="session", autouse=True)
def _pinned_server():
    """Closes the server of the official sides' pinned runs (``tests/pinned_env.py``) at the session's end, so
    that its CPU time is counted in the session's last test."""
    yield
    from tests.pinned_env import close_pinned_server

    close_pinned_server()


@pytest.fixture
def finished_runs(session_folders):
    """The finished runs of this session (``tests/fixtures/finished_runs.py``): a copy of a command line's
    finished run, made once per session and shared by the xdist workers (:func:`session_folders`)."""
    from tests.fixtures.finished_runs import FinishedRuns

    return FinishedRuns(session_folders)
