"""A full disk, a quota, a read-only or unwritable cache met while something is written into the cache.

Whatever library writes (safetensors' ``save_file``, whose ``SafetensorError`` is no ``OSError`` and carries
the OS error in its text only; transformers' ``save_pretrained``; ``torch.save``; the project's own streaming
writer), a random model that cannot be written is one ``LiteLVLMError`` naming the cache folder, with nothing
partial left in the cache, and a feature entry that cannot be stored is skipped with one warning. The writers
fail as ``tests/fixtures/full_disk.py`` makes them (what each library raises on a real full disk).
"""

from __future__ import annotations

import errno
import os
from pathlib import Path

import pytest
import torch
import transformers.modeling_utils
from safetensors import SafetensorError

import litelvlm.clip.random_init
import litelvlm.models.safetensors_stream
import litelvlm.runs.cache
from litelvlm.cli import main
from litelvlm.clip import resolve_random_model
from litelvlm.errors import LiteLVLMError
from litelvlm.glamm.random_model import random_model_dir
from litelvlm.qwen.checkpoint import random_qwen_dir
from litelvlm.runs.cache import TensorCache, write_once
from tests.fixtures.full_disk import STORAGE, full_save_file, full_torch_save, safetensor_error


def _leftovers(cache: Path) -> list[str]:
    return sorted(str(p.relative_to(cache)) for p in cache.rglob("*") if p.is_file())


def _refused(root: Path, error: LiteLVLMError, reason: str = "No space left on device") -> None:
    assert str(error) == (f"the cache folder {root} cannot be written ({reason}); nothing partial is left "
                          "there: free some space, or set LITELVLM_CACHE to another folder")


@pytest.mark.odd_case("storage", "a full disk, a quota, a read-only or unwritable cache while a random model "
                      "is written, from a writer whose error is no OSError (safetensors' SafetensorError)",
                      "write_once",
                      "one LiteLVLMError naming the cache folder and the cause; nothing partial left in the "
                      "cache")
@pytest.mark.parametrize("text", ["0.8", "older"])
@pytest.mark.parametrize("name", sorted(STORAGE))
def test_a_storage_error_of_any_writer_in_write_once_names_the_cache_folder_and_leaves_nothing(name, text,
                                                                                              tmp_path):
    code = STORAGE[name]
    root = tmp_path / "cache" / "random-models" / "m"

    def write(folder: Path) -> None:
        (folder / "config.json").write_text("{}")
        (folder / "model.safetensors").write_bytes(b"half")
        raise safetensor_error(code, text)

    with pytest.raises(LiteLVLMError) as caught:
        write_once(root, write)
    _refused(root, caught.value, os.strerror(code))
    assert _leftovers(tmp_path / "cache") == [] and not root.exists()


def test_another_writer_error_is_raised_as_it_is_and_leaves_nothing(tmp_path):
    root = tmp_path / "cache" / "m"

    def write(folder: Path) -> None:
        (folder / "model.safetensors").write_bytes(b"half")
        raise safetensor_error(errno.ENOENT)

    with pytest.raises(SafetensorError, match="os error 2"):
        write_once(root, write)
    assert _leftovers(tmp_path / "cache") == []


def _hf_clip(monkeypatch):
    monkeypatch.setattr(transformers.modeling_utils, "safe_save_file", full_save_file())
    return lambda: resolve_random_model("tiny-random:0", "hf")


def _open_clip(monkeypatch):
    monkeypatch.setattr(litelvlm.clip.random_init, "save_file", full_save_file())
    return lambda: resolve_random_model("tiny-random:0", "open_clip")


def _glamm(monkeypatch):
    monkeypatch.setattr(torch, "save", full_torch_save)
    return lambda: random_model_dir("tiny", 0)


def _qwen(monkeypatch):
    monkeypatch.setattr(litelvlm.models.safetensors_stream, "save_safetensors",
                        lambda tensors, path, metadata=None, bar=None: full_save_file()(tensors, path))
    return lambda: random_qwen_dir("tiny", 0)


@pytest.mark.odd_case("storage", "a full disk while each kind of random model is written into the cache (a "
                      "transformers CLIP, an open_clip CLIP, GLaMM's torch.save shards, a Qwen family's "
                      "safetensors shards)", "load_clip, load_pipeline",
                      "one LiteLVLMError naming the cache folder; nothing partial left in the cache")
@pytest.mark.parametrize("writer", ["hf-clip", "open_clip", "glamm", "qwen"])
def test_a_full_disk_while_a_random_model_is_written_is_the_cache_error(writer, fresh_cache, monkeypatch):
    make = {"hf-clip": _hf_clip, "open_clip": _open_clip, "glamm": _glamm, "qwen": _qwen}[writer](monkeypatch)
    with pytest.raises(LiteLVLMError) as caught:
        make()
    root = Path(str(caught.value).split(" cannot be written")[0].removeprefix("the cache folder "))
    assert root.parent == fresh_cache / "random-models"
    _refused(root, caught.value)
    assert _leftovers(fresh_cache) == []


@pytest.mark.odd_case("storage", "a full disk while the random CLIP a run loads is written into the cache "
                      "(safetensors' SafetensorError)", "reversal",
                      "one line naming the cache folder, exit 2, no traceback; nothing partial left")
def test_reversal_on_a_full_cache_disk_is_one_line_naming_the_cache_folder(coco128, fresh_cache, monkeypatch,
                                                                          tmp_path, capsys):
    _hf_clip(monkeypatch)
    argv = ["reversal", "--model", "tiny336-random", "--refer-dir", str(coco128), "--limit-sentences", "6",
            "--layers", "2", "--out", str(tmp_path / "out"), "--threads", "1"]
    assert main(argv) == 2
    err = capsys.readouterr().err
    (line,) = err.strip().splitlines()
    assert line.startswith("litelvlm reversal: error: the cache folder ") and "Traceback" not in err
    assert str(fresh_cache / "random-models" / "tiny336-random-hf-seed0") in line
    assert "(No space left on device); nothing partial is left there" in line
    assert _leftovers(fresh_cache) == []


@pytest.mark.odd_case("storage", "a full disk while a feature entry is stored (safetensors' SafetensorError)",
                      "TensorCache.put", "not stored, one warning; the run goes on; no temporary file left")
def test_a_feature_entry_that_cannot_be_stored_is_skipped_with_one_warning(tmp_path, monkeypatch, caplog):
    monkeypatch.setattr(litelvlm.runs.cache, "save_file", full_save_file())
    cache = TensorCache(tmp_path, {"kind": "test"})
    with caplog.at_level("WARNING"):
        cache.put("a", {"x": torch.zeros(3)})
        cache.put("b", {"x": torch.ones(3)})
    warnings = [r.getMessage() for r in caplog.records if r.name == "litelvlm.runs.cache"]
    assert len(warnings) == 1 and "No space left on device" in warnings[0] and str(cache.dir) in warnings[0]
    assert not cache.writable and cache.get("a") is None
    assert _leftovers(tmp_path) == [f"{cache.dir.name}/namespace.json"]
