"""Deferred CLIP loading (``load_clip(..., defer=True)``): a saved description answers until a model is
needed, equals the loaded model's, follows the model's files, and lets a fully cached reversal rerun
without importing transformers or open_clip (checked in a fresh interpreter; no timing asserted)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from huggingface_hub import constants as hf_constants

from litelvlm.clip import DeferredClip, load_clip
from litelvlm.clip.deferred import as_json
from litelvlm.clip.files import hub_snapshot_dir
from litelvlm.errors import LiteLVLMError

DESCRIBED = ("name", "backend", "grid", "geometry", "vision_layers", "text_layers", "vision_heads",
             "text_heads", "context_length")


@pytest.fixture
def cache(fresh_cache):
    return fresh_cache


def _descriptions(cache: Path) -> list[Path]:
    return sorted((cache / "clip-descriptions").glob("*.json"))


@pytest.mark.parametrize("backend", ["hf", "open_clip"])
def test_second_load_is_deferred_and_describes_the_model_exactly(backend, cache, tiny_hf_clip_dir,
                                                                  tiny_open_clip_dir):
    model = str(tiny_hf_clip_dir if backend == "hf" else tiny_open_clip_dir)
    first = load_clip(model, backend, defer=True)
    assert not isinstance(first, DeferredClip)
    assert len(_descriptions(cache)) == 1
    second = load_clip(model, backend, defer=True)
    assert isinstance(second, DeferredClip) and not second.loaded
    for attr in DESCRIBED:
        assert getattr(second, attr) == getattr(first, attr), attr
    assert second.describe() == as_json(first.describe())  # what cache keys and config.json hold
    assert second.weights_hash() == first.weights_hash()
    assert not second.loaded  # nothing above needed the model
    from PIL import Image

    pixels = second.preprocess([Image.new("RGB", (40, 30), (10, 200, 30))])  # anything else loads it
    assert second.loaded
    assert pixels.equal(first.preprocess([Image.new("RGB", (40, 30), (10, 200, 30))]))
    assert second.trace_image(pixels).projected(-1).equal(first.trace_image(pixels).projected(-1))


def test_without_defer_nothing_is_saved_and_the_model_is_loaded(cache, tiny_hf_clip_dir):
    clip = load_clip(str(tiny_hf_clip_dir), "hf")
    assert not isinstance(clip, DeferredClip)
    assert _descriptions(cache) == []


def test_key_follows_files_dtype_and_model_string(cache, tiny_hf_clip_dir, tmp_path):
    import torch

    folder = tmp_path / "model"
    shutil.copytree(tiny_hf_clip_dir, folder)
    load_clip(str(folder), "hf", defer=True)
    assert isinstance(load_clip(str(folder), "hf", defer=True), DeferredClip)
    # another dtype is another description
    assert not isinstance(load_clip(str(folder), "hf", dtype=torch.bfloat16, defer=True), DeferredClip)
    assert isinstance(load_clip(str(folder), "hf", dtype=torch.bfloat16, defer=True), DeferredClip)
    # a changed preprocessing file (not a weight file) is a new key too
    pre = folder / "preprocessor_config.json"
    st = pre.stat()
    os.utime(pre, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000_000))
    assert not isinstance(load_clip(str(folder), "hf", defer=True), DeferredClip)
    # another string for the same folder is another model string, so another description
    assert not isinstance(load_clip(str(folder) + os.sep, "hf", defer=True), DeferredClip)
    assert len(_descriptions(cache)) == 4


def test_a_description_that_does_not_match_is_removed_with_a_clear_error(cache, tiny_hf_clip_dir):
    load_clip(str(tiny_hf_clip_dir), "hf", defer=True)
    (path,) = _descriptions(cache)
    record = json.loads(path.read_text())
    record["describe"]["weights_hash"] = "0" * 16
    path.write_text(json.dumps(record))
    clip = load_clip(str(tiny_hf_clip_dir), "hf", defer=True)
    assert isinstance(clip, DeferredClip) and clip.weights_hash() == "0" * 16
    with pytest.raises(LiteLVLMError, match="no longer matches its saved description"):
        clip.load()
    assert not path.exists()


def test_an_unreadable_description_is_ignored(cache, tiny_hf_clip_dir):
    load_clip(str(tiny_hf_clip_dir), "hf", defer=True)
    (path,) = _descriptions(cache)
    path.write_text("{not json")
    assert not isinstance(load_clip(str(tiny_hf_clip_dir), "hf", defer=True), DeferredClip)
    assert json.loads(path.read_text())["v"] == 1  # rewritten


def test_a_hub_id_in_the_local_cache_has_files_and_a_description(tiny_hf_clip_dir, tmp_path, monkeypatch):
    """The default model is a hub id: once in the Hugging Face cache its files are found offline, so its
    weights hash is memoised and its description saved (a fake cache of the real layout; the hub's cache
    folder and offline switch as ``HF_HUB_CACHE=... HF_HUB_OFFLINE=1`` set them)."""
    hub = tmp_path / "hub"
    snap = hub / "models--someorg--tiny-clip" / "snapshots" / "0123abc"
    shutil.copytree(tiny_hf_clip_dir, snap)
    (hub / "models--someorg--tiny-clip" / "refs").mkdir()
    (hub / "models--someorg--tiny-clip" / "refs" / "main").write_text("0123abc")
    for name, value in (("HF_HUB_CACHE", str(hub)), ("HF_HUB_OFFLINE", "1"),
                        ("LITELVLM_CACHE", str(tmp_path / "c"))):
        monkeypatch.setenv(name, value)
    monkeypatch.setattr(hf_constants, "HF_HUB_CACHE", str(hub))   # read once, when huggingface_hub loads
    monkeypatch.setattr(hf_constants, "HF_HUB_OFFLINE", True)
    a = load_clip("someorg/tiny-clip", "hf", defer=True)
    b = load_clip("someorg/tiny-clip", "hf", defer=True)
    assert hub_snapshot_dir("someorg/tiny-clip") == snap and len(a.weight_files()) >= 2
    assert isinstance(b, DeferredClip) and b.describe() == as_json(a.describe())
    assert len(list((tmp_path / "c" / "weights-hash").glob("*.txt"))) == 1


WARM_RUN = """
import json, sys
from litelvlm.cli import main
rc = main(json.loads(sys.argv[1]))
print(json.dumps({"rc": rc, "loaded": sorted(m for m in ("transformers", "open_clip") if m in sys.modules)}))
"""


@pytest.mark.parametrize("model,backend", [("tiny336-random", "hf"),
                                           pytest.param("tiny-random", "open_clip", marks=pytest.mark.slow)])
@pytest.mark.slow  # the default suite's time budget (about 10 s each)
def test_a_fully_cached_reversal_rerun_loads_no_model_and_writes_the_same_tables(model, backend, coco128,
                                                                                 tmp_path):
    env = {**os.environ, "LITELVLM_CACHE": str(tmp_path / "cache")}

    def run(out: str) -> dict:
        argv = ["reversal", "--model", model, "--backend", backend, "--refer-dir", str(coco128),
                "--limit-sentences", "12", "--save-maps", "2", "--n-boot", "50", "--out", str(tmp_path / out)]
        done = subprocess.run([sys.executable, "-c", WARM_RUN, json.dumps(argv)], capture_output=True,
                              text=True, env=env, timeout=600)
        assert done.returncode == 0, done.stderr[-2000:]
        return json.loads(done.stdout.strip().splitlines()[-1])

    cold = run("cold")
    assert cold["rc"] == 0 and ("open_clip" if backend == "open_clip" else "transformers") in cold["loaded"]
    assert run("warm") == {"rc": 0, "loaded": []}
    for name in ("reversal.parquet", "summary.csv", "similarity_maps.parquet"):
        assert (tmp_path / "warm" / name).read_bytes() == (tmp_path / "cold" / name).read_bytes(), name
    cold, warm = (json.loads((tmp_path / d / "config.json").read_text()) for d in ("cold", "warm"))
    assert warm["clip"] == cold["clip"] and warm["versions"] == cold["versions"]
    assert warm["counts"]["cache_misses"] == 0 and warm["counts"]["text_cache_hit"] is True
