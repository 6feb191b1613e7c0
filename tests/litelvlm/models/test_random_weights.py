"""Random full-size models: the fast fill (deterministic, finite, of the initialisation's scale), the tiny
presets' pinned weights, the streaming safetensors writer, the progress bar and the cache reuse."""

from __future__ import annotations

import pytest
import torch

from litelvlm.errors import LiteLVLMError
from litelvlm.models import random_weights as rw
from litelvlm.runs.checksums import tensors_digest
from tests.fixtures.memory import skip_unless_free

#: tensors_digest of the tiny presets' state dicts at seed 3, as per-module initialisation built them before
#: the fast fill existed (the default commands' result tables rest on these weights)
TINY_QWEN_SEED3 = "6d3daaa49454b5266f15972201069872cd380be11408021ce1e95a27769e2df6"


@pytest.fixture(scope="module")
def tiny_qwens():
    from litelvlm.qwen.checkpoint import build_qwen

    return build_qwen("tiny", seed=3), build_qwen("tiny", seed=3, fill="fast")


def test_the_tiny_preset_keeps_its_exact_weights(tiny_qwens):
    init, fast = tiny_qwens
    assert tensors_digest(init.state_dict()) == TINY_QWEN_SEED3
    assert tensors_digest(fast.state_dict()) != TINY_QWEN_SEED3


def test_the_fast_fill_has_the_initialisations_distributions_and_buffers(tiny_qwens):
    init, fast = tiny_qwens
    sd = fast.state_dict()
    assert all(torch.isfinite(v).all() for v in sd.values() if v.is_floating_point())
    norm = sd["model.language_model.layers.0.input_layernorm.weight"]
    assert torch.equal(norm, torch.ones_like(norm))
    bias = sd["model.visual.blocks.0.attn.qkv.bias"]
    assert torch.equal(bias, torch.zeros_like(bias))
    emb = sd["model.language_model.embed_tokens.weight"]
    assert emb.float().std().item() == pytest.approx(0.02, rel=0.05)
    assert emb.float().std().item() == pytest.approx(
        init.state_dict()["model.language_model.embed_tokens.weight"]
                                                     .float().std().item(), rel=0.05)
    buffers = dict(init.named_buffers())   # rotary frequencies: computed by the constructors, not by a fill
    assert buffers and all(torch.equal(v, buffers[k]) for k, v in fast.named_buffers())


def test_the_fast_fill_is_deterministic_whatever_the_threads(monkeypatch):
    monkeypatch.setattr(rw, "CHUNK", 1000)   # several chunks per tensor
    shapes = [(70, 50), (3000,), (7,)]

    def filled(seed, workers):
        ts = [torch.empty(s, dtype=torch.bfloat16) for s in shapes]
        rw.fast_fill([("a", ts[0], 0.02, None), ("b", ts[1], 1.0, None), ("c", ts[2], 0.0, 1.0)], seed,
                     workers=workers)
        return ts

    one, many, other = filled(5, 1), filled(5, 4), filled(6, 4)
    assert all(torch.equal(a, b) for a, b in zip(one, many))
    assert not torch.equal(one[0], other[0])
    assert torch.equal(one[2], torch.ones(7, dtype=torch.bfloat16))
    assert one[1][:1000].float().std().item() != pytest.approx(one[1][1000:2000].float().std().item(),
                                                               abs=0.0)


def test_skip_init_restores_the_initialisers():
    before = torch.nn.init.kaiming_uniform_
    with rw.skip_init():
        assert torch.nn.init.kaiming_uniform_ is not before
        lin = torch.nn.Linear(4, 4)
    assert torch.nn.init.kaiming_uniform_ is before
    assert lin.weight.shape == (4, 4)


@pytest.mark.odd_case("bad value", "LITELVLM_RANDOM_FILL names no fill", "every command on a random preset",
                      "a LiteLVLMError naming the variable and the fills")
def test_the_fill_is_chosen_per_preset_and_by_the_environment(monkeypatch):
    monkeypatch.delenv("LITELVLM_RANDOM_FILL", raising=False)
    assert (rw.resolve_fill("auto", True), rw.resolve_fill("auto", False)) == ("fast", "init")
    assert (rw.cache_suffix("fast"), rw.cache_suffix("init")) == ("-fast", "")
    monkeypatch.setenv("LITELVLM_RANDOM_FILL", "init")
    assert rw.resolve_fill("auto", True) == "init" and rw.resolve_fill("fast", True) == "fast"
    monkeypatch.setenv("LITELVLM_RANDOM_FILL", "quick")
    with pytest.raises(LiteLVLMError, match="LITELVLM_RANDOM_FILL.*auto, init, fast"):
        rw.resolve_fill("auto", True)


def test_the_streaming_writer_writes_save_files_bytes(tmp_path):
    from safetensors.torch import save_file

    from litelvlm.models.safetensors_stream import DTYPES, save_safetensors

    gen = torch.Generator().manual_seed(0)
    tensors = {f"t{(i * 7) % 5}.{i}": (torch.randn(i % 3 + 1, 2, generator=gen) * 9).to(dt)
               for i, dt in enumerate(DTYPES)}
    tensors |= {"scalar": torch.tensor(2.5), "empty": torch.ones(0, 3, dtype=torch.bfloat16),
                "é": torch.ones(2)}
    for meta in ({"format": "pt"}, None):
        save_file(tensors, str(tmp_path / "a"), metadata=meta)
        save_safetensors(tensors, tmp_path / "b", metadata=meta)
        assert (tmp_path / "a").read_bytes() == (tmp_path / "b").read_bytes()


def test_a_random_folder_shows_its_progress_and_is_built_once(fresh_cache, monkeypatch, capsys):
    from litelvlm.qwen import checkpoint

    monkeypatch.setattr(rw, "PROGRESS_MIN_BYTES", 0)   # the tiny preset is below the bar's threshold
    builds = []
    real = checkpoint.build_qwen
    monkeypatch.setattr(checkpoint, "build_qwen", lambda *a, **k: builds.append(a) or real(*a, **k))
    folder = checkpoint.qwen_folder("qwen2.5-vl-tiny-random:3")
    err = capsys.readouterr().err
    assert f"writing {folder.name}" not in err          # written aside, then renamed into place
    assert "writing .qwen2.5-vl-tiny-seed3-" in err and "100%" in err
    assert len(builds) == 1 and folder.name == "qwen2.5-vl-tiny-seed3"
    assert checkpoint.qwen_folder("qwen2.5-vl-tiny-random:3") == folder
    assert len(builds) == 1 and "writing" not in capsys.readouterr().err   # the cached folder: nothing built


def test_a_full_size_bar_is_shown_and_a_tiny_one_is_not():
    assert rw.progress(rw.PROGRESS_MIN_BYTES, "x").disable is False
    assert rw.progress(rw.PROGRESS_MIN_BYTES - 1, "x").disable is True


def _same_modules(parts, built) -> bool:
    qwen, fcs, sam2, tracking = built
    pairs = ((parts.qwen, qwen), (parts.fcs, fcs), (parts.sam2.model, sam2.model))
    same = all(m.state_dict().keys() == t.state_dict().keys()
               and all(torch.equal(v, t.state_dict()[k]) for k, v in m.state_dict().items()) for m,
               t in pairs)
    return same and all(torch.equal(parts.sam2.tracking[k], v) for k, v in tracking.items())


def test_a_fast_filled_model_round_trips_through_the_checkpoint_layout(tmp_path):
    """The fast fill's tensors written in Sa2VA's released layout and loaded back: the same tensors."""
    from litelvlm.sa2va.checkpoint import build_sa2va, load_sa2va, save_random_sa2va

    folder = save_random_sa2va(tmp_path / "sa2va", "tiny", seed=4, fill="fast")
    assert '"fill": "fast"' in (folder / "config.json").read_text()
    assert _same_modules(load_sa2va(str(folder), processor=False), build_sa2va("tiny", seed=4, fill="fast"))


def test_no_write_builds_in_memory_what_the_written_folder_loads(fresh_cache):
    """``validate --no-write`` (``no_write()``): a random preset named by its model string is built in memory
    and no folder is written; its tensors, config and processor are those its written folder loads back (the
    round trip through the checkpoint layout, proven here on the tiny preset); outside it the folder is
    written as before."""
    from litelvlm.sa2va.checkpoint import load_sa2va, sa2va_tensors

    with rw.no_write():
        assert not rw.writes_folders()
        mem = load_sa2va("sa2va-tiny-random:1")
    assert rw.writes_folders() and not (fresh_cache / "random-models").exists()
    disk = load_sa2va("sa2va-tiny-random:1")
    assert [f.name for f in (fresh_cache / "random-models").iterdir()] == ["sa2va-tiny-seed1"]
    a, b = (sa2va_tensors(p.qwen, p.fcs, p.sam2, p.sam2.tracking) for p in (mem, disk))
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) and a[k].dtype == b[k].dtype for k in a)
    assert mem.config == disk.config and mem.seg_token_id == disk.seg_token_id
    assert mem.processor.tokenizer.get_vocab() == disk.processor.tokenizer.get_vocab()
    assert mem.processor.tokenizer.chat_template == disk.processor.tokenizer.chat_template


def test_no_write_builds_the_tiny_glamm_its_folder_loads(fresh_cache):
    """The same for GLaMM: the tiny random GLaMM built in memory has the tensors (its CLIP tower aside: the
    checkpoint leaves it to the CLIP backend), architecture and tokenizer its written folder loads back."""
    from litelvlm.glamm.checkpoint import load_glamm_checkpoint
    from litelvlm.glamm.random_model import built_random, random_model_dir

    with rw.no_write():
        mem, mem_tok = built_random("tiny", 2, None, "cpu", torch.float32)
    assert not (fresh_cache / "random-models").exists()
    disk, disk_tok = load_glamm_checkpoint(random_model_dir("tiny", 2))
    a, b = mem.state_dict(), disk.state_dict()
    kept = [k for k in b if "vision_tower" not in k]
    assert a.keys() == b.keys() and kept and all(torch.equal(a[k], b[k]) for k in kept)
    assert mem.arch == disk.arch and mem_tok.get_vocab() == disk_tok.get_vocab()
    assert mem_tok("It is [SEG].").input_ids == disk_tok("It is [SEG].").input_ids


@pytest.mark.slow
def test_the_full_size_random_sa2va_round_trips_with_progress_and_is_reused(fresh_cache, capsys):
    """Sa2VA-Qwen2_5-VL-3B, fast-filled (about 7.5 GB in bfloat16): written once under the cache with its
    progress shown, loaded back through the checkpoint path with every tensor as the file holds it, reused on
    a second use."""
    skip_unless_free(18, "the full-size Sa2VA (built, then loaded: about 16 GB)")
    from safetensors import safe_open

    from litelvlm.sa2va.checkpoint import load_sa2va, sa2va_folder, sa2va_tensors

    folder = sa2va_folder("sa2va-qwen2_5-vl-3b-random")
    err = capsys.readouterr().err
    assert folder.name == "sa2va-3b-seed0-fast" and "random Qwen2.5-VL 3b: filling" in err and "100%" in err
    parts = load_sa2va("sa2va-qwen2_5-vl-3b-random", processor=False)
    assert "filling" not in capsys.readouterr().err                       # the cached folder: nothing built
    mine = sa2va_tensors(parts.qwen, parts.fcs, parts.sam2, parts.sam2.tracking)
    for f in sorted(folder.glob("model-*.safetensors")):
        with safe_open(str(f), framework="pt") as fh:
            for k in fh.keys():  # noqa: SIM118 (no __iter__)
                t = fh.get_tensor(k)
                assert torch.equal(mine[k], t) and torch.isfinite(t).all(), k


def test_shards_are_written_side_by_side_and_nothing_is_left_of_a_failed_write(tmp_path, monkeypatch):
    from safetensors.torch import load_file

    from litelvlm.models import safetensors_stream as st

    shards = {f"s{i}.safetensors": {f"t{i}": torch.full((3,), float(i))} for i in range(3)}
    st.save_shards(shards, tmp_path / "ok", metadata={"format": "pt"})
    assert all(torch.equal(load_file(tmp_path / "ok" / n)[k], t[k]) for n, t in shards.items() for k in t)
    real = st.save_safetensors

    def fail_one(tensors, path, **kw):
        if "t1" in tensors:
            raise OSError("disk full")
        real(tensors, path, **kw)

    monkeypatch.setattr(st, "save_safetensors", fail_one)
    (tmp_path / "bad").mkdir()
    with pytest.raises(OSError, match="disk full"):
        st.save_shards(shards, tmp_path / "bad")
    assert list((tmp_path / "bad").iterdir()) == []


def test_the_fast_fill_leaves_meta_tensors_alone_and_fills_the_rest_as_before():
    """A model built on the meta device (efficiency --flops-only counts it) holds no data: nothing to fill, no
    error; the real tensors beside it get the values they get without it (each keeps its place in the
    plan)."""
    import torch

    from litelvlm.models.random_weights import fast_fill

    real = [torch.empty(5, 3) for _ in range(2)]
    fast_fill([("a", real[0], 0.02, None), ("b", real[1], 0.02, None)], seed=3)
    mixed = [torch.empty(5, 3), torch.empty(4, 4, device="meta"), torch.empty(5, 3)]
    fast_fill([("a", mixed[0], 0.02, None), ("m", mixed[1], 0.02, None), ("b", mixed[2], 0.02, None)], seed=3)
    assert torch.equal(mixed[0], real[0]) and mixed[1].is_meta and mixed[2].isfinite().all()


#: every builder of a family's modules on ``meta`` (the efficiency study's counts, a checkpoint's shapes
#: before its tensors are assigned): module, callable, arguments
META_BUILDS = [
    ("litelvlm.glamm.build", "build_glamm", ("tiny",)),
    ("litelvlm.qwen.checkpoint", "build_qwen", ("tiny",)),
    ("litelvlm.unipixel.checkpoint", "build_unipixel", ("tiny",)),
    ("litelvlm.videoglamm.checkpoint", "build_videoglamm", ("tiny",)),
    ("litelvlm.sa2va.checkpoint", "build_sa2va", ("tiny",)),
    ("litelvlm.sa2va.internvl.checkpoint", "build_internvl", ("internvl3-tiny",)),
    ("litelvlm.sa2va.qwen3_checkpoint", "build_qwen3", ("tiny",)),
]


@pytest.mark.parametrize("module,name,args", META_BUILDS, ids=[n for _, n, _ in META_BUILDS])
def test_a_build_on_meta_runs_no_initialisation(module, name, args, monkeypatch):
    """``meta`` holds no values: initialising its tensors only spends time (torch's reference kernels, op by
    op, in Python)."""
    import importlib

    calls = []
    for fn in rw._INIT_FUNCTIONS:
        real = getattr(torch.nn.init, fn)
        monkeypatch.setattr(torch.nn.init, fn, lambda *a, _fn=fn, _real=real, **k: (calls.append(_fn),
                                                                                       _real(*a, **k))[1])
    built = getattr(importlib.import_module(module), name)(*args, device="meta")
    tensors = [t for m in (built if isinstance(built, tuple) else (built,)) if isinstance(m, torch.nn.Module)
               for t in m.parameters()]
    assert tensors and all(t.is_meta for t in tensors)
    assert calls == [], f"{name} on meta initialised tensors: {sorted(set(calls))}"


def test_the_efficiency_studys_meta_videoglamm_runs_no_initialisation(monkeypatch):
    from litelvlm.videoglamm.cost_parts import VideoParts, videoglamm_arch

    calls = []
    monkeypatch.setattr(torch.nn.init, "kaiming_uniform_", lambda *a, **k: calls.append(1))
    parts = VideoParts(videoglamm_arch("tiny", "tiny"), torch.float32)
    assert calls == [] and next(parts.model.parameters()).is_meta
