"""Every cache entry is checked against a checksum of its payload before it is used: a feature entry whose
safetensors header is intact but whose tensor bytes are damaged, an entry written without a checksum, and a
random model folder with a damaged file are each a miss, recomputed to the clean result, with exactly one
warning."""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path

import pytest
import torch

from litelvlm.cli import main
from litelvlm.runs.cache import TensorCache, write_once


def _damage_payload(path: Path, n: int = 32) -> None:
    """Flip ``n`` bytes of a safetensors file's tensor data, leaving its header (and modification time)
    intact, as a bad disk sector or a faulty copy would."""
    st = path.stat()
    data = bytearray(path.read_bytes())
    start = 8 + int.from_bytes(data[:8], "little")
    assert len(data) >= start + 16 + n, "the entry has no payload to damage"
    for i in range(start + 16, start + 16 + n):
        data[i] ^= 0x5A
    path.write_bytes(bytes(data))
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))


def _warnings(caplog, logger: str = "litelvlm.runs.cache") -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == logger and r.levelno == logging.WARNING]


def _entry() -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    return {"layer_1": torch.randn(16, 8, generator=g), "size": torch.tensor([480, 640])}


@pytest.mark.odd_case("cache", "a feature entry whose header is intact but whose tensor bytes are damaged",
                      "TensorCache.get", "a miss: the entry is removed, one warning; recomputed equal to the "
                      "clean one")
def test_a_damaged_payload_is_a_miss_with_one_warning_and_the_recomputed_entry_equals_the_clean_one(tmp_path,
                                                                                                     caplog):
    cache = TensorCache(tmp_path, {"kind": "test"})
    clean = _entry()
    cache.put("img", clean)
    hit = cache.get("img")
    assert hit is not None and all(torch.equal(hit[k], clean[k]) for k in clean)
    header = cache._path("img").read_bytes()[:64]
    _damage_payload(cache._path("img"))
    assert cache._path("img").read_bytes()[:64] == header  # the header still reads fine
    with caplog.at_level("WARNING"):
        assert cache.get("img") is None
    assert not cache._path("img").exists() and cache.bad == 1
    (message,) = _warnings(caplog)
    assert "img.safetensors" in message and "checksum" in message
    cache.put("img", _entry())  # recomputed
    again = cache.get("img")
    assert again is not None and all(torch.equal(again[k], clean[k]) for k in clean)


@pytest.mark.odd_case("cache", "several damaged entries in one cache folder", "TensorCache.get",
                      "each a miss; one warning for the folder")
def test_several_damaged_entries_of_one_cache_give_one_warning(tmp_path, caplog):
    cache = TensorCache(tmp_path, {"kind": "test"})
    for name in ("a", "b", "c"):
        cache.put(name, _entry())
        _damage_payload(cache._path(name))
    with caplog.at_level("WARNING"):
        assert [cache.get(name) for name in ("a", "b", "c")] == [None, None, None]
    assert len(_warnings(caplog)) == 1 and cache.bad == 3


@pytest.mark.odd_case("cache", "a feature entry written without a checksum (an older litelvlm)",
                      "TensorCache.get", "a miss: removed, one warning")
def test_an_entry_without_a_checksum_is_a_miss_with_one_warning(tmp_path, caplog):
    from safetensors.torch import save_file

    cache = TensorCache(tmp_path, {"kind": "test"})
    save_file(_entry(), str(cache._path("old")))  # the format before checksums: no metadata
    with caplog.at_level("WARNING"):
        assert cache.get("old") is None
    (message,) = _warnings(caplog)
    assert "no checksum" in message and not cache._path("old").exists()


def test_a_clean_entry_is_a_hit_without_a_warning_and_keeps_its_values(tmp_path, caplog):
    cache = TensorCache(tmp_path, {"kind": "test"})
    entry = {**_entry(), "half": torch.randn(3, 2).bfloat16(), "scalar": torch.tensor(1.5),
             "empty": torch.zeros(0)}
    cache.put("x", entry)
    with caplog.at_level("WARNING"):
        hit = TensorCache(tmp_path, {"kind": "test"}).get("x")
    assert _warnings(caplog) == [] and hit is not None and set(hit) == set(entry)
    for k, v in entry.items():
        assert hit[k].dtype == v.dtype and torch.equal(hit[k], v)


def _reversal(model: str | Path, refer: Path, out: Path, cache: Path, *extra: str) -> int:
    # --n-boot 10: the tables are compared between runs of the same options, whatever the replicates
    return main(["reversal", "--model", str(model), "--refer-dir", str(refer), "--limit-sentences", "24",
                 "--layers", "all", "--n-boot", "10", "--cache-dir", str(cache), "--out", str(out),
                 "--threads", "1", *extra])


def _same_tables(a: Path, b: Path) -> None:
    for name in ("reversal.parquet", "summary.csv"):
        assert (a / name).read_bytes() == (b / name).read_bytes(), name


@pytest.mark.odd_case("cache", "a vision-feature entry with damaged tensor bytes, header intact", "reversal",
                      "that image is a miss, recomputed; one warning; byte-identical tables")
def test_reversal_recomputes_a_damaged_feature_entry_with_one_warning_and_the_same_tables(
    coco128, tiny_hf_clip_dir,
                                                                                          tmp_path, caplog):
    cache = tmp_path / "cache"
    assert _reversal(tiny_hf_clip_dir, coco128, tmp_path / "clean", cache) == 0
    counts = json.loads((tmp_path / "clean" / "config.json").read_text())["counts"]
    entries = sorted((cache / "vision-features").rglob("*.safetensors"))
    assert len(entries) == counts["cache_misses"] >= 2
    _damage_payload(entries[0])
    with caplog.at_level("WARNING"):
        assert _reversal(tiny_hf_clip_dir, coco128, tmp_path / "damaged", cache) == 0
    counts = json.loads((tmp_path / "damaged" / "config.json").read_text())["counts"]
    assert counts["cache_misses"] == 1 and counts["cache_hits"] == len(entries) - 1
    (message,) = _warnings(caplog)
    assert entries[0].name in message
    _same_tables(tmp_path / "clean", tmp_path / "damaged")
    caplog.clear()
    with caplog.at_level("WARNING"):  # the recomputed entry is now a verified hit
        assert _reversal(tiny_hf_clip_dir, coco128, tmp_path / "warm", cache) == 0
    assert json.loads((tmp_path / "warm" / "config.json").read_text())["counts"]["cache_misses"] == 0
    assert _warnings(caplog) == []
    _same_tables(tmp_path / "clean", tmp_path / "warm")


def _write_model(calls: list[int]):
    def write(folder: Path) -> None:
        calls.append(1)
        g = torch.Generator().manual_seed(1)
        from safetensors.torch import save_file

        save_file({"w": torch.randn(64, 64, generator=g)}, str(folder / "model.safetensors"))
        (folder / "config.json").write_text('{"model_type": "x"}')
    return write


@pytest.mark.odd_case("cache", "a random model folder with a damaged weights file, header intact",
                      "write_once",
                      "one warning naming the folder and file; the folder is written again, same bytes")
def test_a_damaged_model_folder_is_written_again_with_one_warning(tmp_path, caplog):
    calls: list[int] = []
    root = tmp_path / "random-models" / "m"
    assert write_once(root, _write_model(calls)) == root and len(calls) == 1
    clean = (root / "model.safetensors").read_bytes()
    assert write_once(root, _write_model(calls)) == root and len(calls) == 1  # verified: not written again
    _damage_payload(root / "model.safetensors")
    with caplog.at_level("WARNING"):
        write_once(root, _write_model(calls))
    (message,) = _warnings(caplog)
    assert str(root) in message and "model.safetensors" in message and "checksum" in message
    assert len(calls) == 2 and (root / "model.safetensors").read_bytes() == clean
    assert sorted(p.name for p in root.parent.iterdir()) == ["m"]  # nothing left aside
    caplog.clear()
    with caplog.at_level("WARNING"):
        write_once(root, _write_model(calls))
    assert len(calls) == 2 and _warnings(caplog) == []


@pytest.mark.parametrize("change", ["no manifest", "file removed", "file added", "file truncated"])
def test_a_model_folder_that_differs_from_its_manifest_is_written_again(change, tmp_path, caplog):
    calls: list[int] = []
    root = tmp_path / "m"
    write_once(root, _write_model(calls))
    if change == "no manifest":  # the marker of an older litelvlm: an empty file
        (root / ".complete").write_text("")
    elif change == "file removed":
        (root / "config.json").unlink()
    elif change == "file added":
        (root / "model-00002.safetensors").write_bytes(b"x")
    else:
        data = (root / "model.safetensors").read_bytes()
        (root / "model.safetensors").write_bytes(data[:-100])
    with caplog.at_level("WARNING"):
        write_once(root, _write_model(calls))
    assert len(calls) == 2 and len(_warnings(caplog)) == 1
    assert sorted(p.name for p in root.iterdir()) == [".complete", "config.json", "model.safetensors"]


def test_without_verify_files_over_1_mib_are_compared_by_size_only(tmp_path, caplog):
    """``verify=False`` (a deferred model, whose weights are not read now) hashes the small files only; the
    weights are checked by the load that reads them (``verify=True``)."""
    from safetensors.torch import save_file

    calls: list[int] = []
    root = tmp_path / "m"

    def write(folder: Path) -> None:
        calls.append(1)
        save_file({"w": torch.arange((1 << 20) // 4 + 64, dtype=torch.float32)},
                  str(folder / "model.safetensors"))
        (folder / "config.json").write_text('{"model_type": "x"}')

    write_once(root, write)
    _damage_payload(root / "model.safetensors")
    assert write_once(root, write, verify=False) == root and len(calls) == 1
    with caplog.at_level("WARNING"):
        write_once(root, write)
    assert len(calls) == 2 and len(_warnings(caplog)) == 1
    (root / "config.json").write_text('{"model_type": "y"}')  # a small file: read even without verify
    write_once(root, write, verify=False)
    assert len(calls) == 3 and (root / "config.json").read_text() == '{"model_type": "x"}'


@pytest.mark.odd_case("cache", "the cached random CLIP a run loads has a damaged weights file, header intact",
                      "reversal (tiny336-random)", "one warning; the model is written again; byte-identical "
                      "tables")
def test_reversal_rewrites_a_damaged_random_model_with_one_warning_and_the_same_tables(coco128, tmp_path,
                                                                                       monkeypatch, caplog):
    monkeypatch.setenv("LITELVLM_CACHE", str(tmp_path / "cache"))
    assert _reversal("tiny336-random", coco128, tmp_path / "clean", tmp_path / "features", "--no-cache") == 0
    (folder,) = (tmp_path / "cache" / "random-models").iterdir()
    clean = (folder / "model.safetensors").read_bytes()
    _damage_payload(folder / "model.safetensors")
    with caplog.at_level("WARNING"):
        assert _reversal("tiny336-random", coco128, tmp_path / "damaged", tmp_path / "features",
                         "--no-cache") == 0
    (message,) = _warnings(caplog)
    assert str(folder) in message and "model.safetensors" in message
    assert (folder / "model.safetensors").read_bytes() == clean
    _same_tables(tmp_path / "clean", tmp_path / "damaged")


@pytest.mark.odd_case("cache", "a weights-hash memo whose bytes are damaged (not 16 hex digits)", "load_clip",
                      "the weights are hashed again, one warning; the same hash")
def test_a_damaged_weights_hash_memo_is_hashed_again_with_one_warning(tiny_hf_clip_dir, tmp_path, monkeypatch,
                                                                      caplog):
    from litelvlm.clip import load_clip

    monkeypatch.setenv("LITELVLM_CACHE", str(tmp_path / "cache"))
    h = load_clip(str(tiny_hf_clip_dir), "hf").weights_hash()
    (memo,) = (tmp_path / "cache" / "weights-hash").glob("*.txt")
    memo.write_bytes(b"\xff" + h[1:].encode() + b"\n")
    with caplog.at_level("WARNING"):
        assert load_clip(str(tiny_hf_clip_dir), "hf").weights_hash() == h
    (message,) = _warnings(caplog, "litelvlm.clip.base")
    assert str(memo) in message and memo.read_text().strip() == h


@pytest.mark.odd_case("cache", "a saved CLIP description whose layer count is damaged",
                      "load_clip (deferred)",
                      "refused at the first load: error naming the description, which is removed")
def test_a_description_with_a_damaged_layer_count_is_refused_when_the_model_loads(tiny_hf_clip_dir, tmp_path,
                                                                                   monkeypatch):
    from litelvlm.clip import DeferredClip, load_clip
    from litelvlm.errors import LiteLVLMError

    monkeypatch.setenv("LITELVLM_CACHE", str(tmp_path / "cache"))
    load_clip(str(tiny_hf_clip_dir), "hf", defer=True)
    (path,) = (tmp_path / "cache" / "clip-descriptions").glob("*.json")
    record = json.loads(path.read_text())
    record["vision_layers"] -= 1
    path.write_text(json.dumps(record))
    clip = load_clip(str(tiny_hf_clip_dir), "hf", defer=True)
    assert isinstance(clip, DeferredClip)
    with pytest.raises(LiteLVLMError, match="no longer matches its saved description"):
        clip.load()
    assert not path.exists()


@pytest.mark.parametrize("where", ["written aside", "damaged one moved aside"])
def test_a_stop_the_moment_an_aside_folder_exists_leaves_nothing_beside_it(where, tmp_path, monkeypatch):
    """A stop (SIGTERM, Ctrl-C) landing as the folder a model is written into, or a damaged one moved into,
    has just been made, before the code holds its name: nothing hidden is left beside the cache entry."""
    root = tmp_path / "cache" / "model"
    if where == "damaged one moved aside":
        write_once(root, lambda d: (d / "w.bin").write_bytes(b"weights"))
        (root / "w.bin").write_bytes(b"damaged")
    real_mkdir, aside = os.mkdir, "-old-" if where == "damaged one moved aside" else "-"

    def mkdir(path, *args, **kwargs):
        real_mkdir(path, *args, **kwargs)
        if os.path.basename(path).startswith(f".model{aside}"):
            raise KeyboardInterrupt

    monkeypatch.setattr(os, "mkdir", mkdir)
    with pytest.raises(KeyboardInterrupt):
        write_once(root, lambda d: (d / "w.bin").write_bytes(b"weights"))
    monkeypatch.undo()
    # the damaged entry itself stays until the next use writes it again; nothing hidden beside it
    assert sorted(p.name for p in root.parent.iterdir()) == ([] if where == "written aside" else ["model"])
