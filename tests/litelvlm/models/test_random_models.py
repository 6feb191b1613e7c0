"""Every family's random preset goes through one helper (:mod:`litelvlm.models.random_models`): built once,
written in the family's real checkpoint layout under ``$LITELVLM_CACHE/random-models/``, reused from there.

The digests below were recorded from the code before the families shared that helper (one copy per family):
the folder's name, the SHA-256 of its tensors (:func:`litelvlm.runs.checksums.tensors_digest` of every weight
file's tensors) and of its files' bytes (each file's name and SHA-256, in name order; a ``torch.save``
``.bin`` file by its tensors only, as ``torch.save`` writes a random ``serialization_id`` into each file).
They must not change: the weights of the tiny presets are pinned, and every result table of the default
commands depends on them. The test reads the session's cache, so a folder another test wrote already costs
only its hashing."""

from __future__ import annotations

import hashlib
import inspect
import json
import os
from pathlib import Path

import pytest
import torch

from litelvlm.runs.checksums import tensors_digest

#: name -> (folder under the cache, tensors digest, files digest), recorded before the refactor
DIGESTS = {
    "glamm-tiny": ("random-models/glamm-tiny-seed0",
                   "bb361c6fdd361e69488b7e4b3575d731f1f967f0169c38004526022d84808675",
                   "629ece9b213960cd"),
    "qwen-tiny": ("random-models/qwen2.5-vl-tiny-seed0",
                  "683199557b329b58233f087d07061c6206f68dc04ee49048955f4f143b6813ea",
                  "e57dc8a9d5dd5a9a"),
    # files re-recorded once: tokenizer_config.json lists the added tokens as UniPixel's pin reads them
    "unipixel-tiny": ("random-models/unipixel-tiny-seed5",
                      "c5b918e2bf494b6110797fadf53e64638b9e3cbe754594e4feaa6777c3cc9b35",
                      "4d1c58be880bd8d9"),
    # files re-recorded once: config.json gained the RoPE keys of Sa2VA's official pin (the tensors unchanged)
    "sa2va-tiny": ("random-models/sa2va-tiny-seed0",
                   "0c4ee1a66c1c8f5eb45af309d0f01ba82bcb0080b83bb52d85893891785b6102",
                   "7eb219bee1c73f0e"),
    "videoglamm-tiny": ("random-models/videoglamm-tiny-seed0",
                        "5f223ada9d8b7f426e49fe6a0120ad90b7562064d0cd851545610017b2a643c5",
                        "14beb071e1cdc48d"),
    "clip-tiny-hf": ("random-models/tiny-random-hf-seed0",
                     "8a806c792ef44545d937d420043dffa5a2b524501e374daea94ab311664c7354",
                     "df19f42407c5990a"),
    "clip-tiny-open_clip": ("random-models/tiny-random-open_clip-seed0",
                            "7875f4d139bc1398d21219de421fbc3ca4468d2263eb0dd0844048e6aa907170",
                            "92ce9b6c1610ca5f"),
    "clip-tiny336-hf": ("random-models/tiny336-random-hf-seed0",
                        "4d17147f31e0a8b771ed961db4a9e6d91b2a87775234dbaaeecda71631fe0a7d",
                        "af5cefde69eb2f1e"),
}


def _folder(name: str) -> Path:
    from litelvlm.clip import resolve_random_model
    from litelvlm.glamm.random_model import random_model_dir
    from litelvlm.qwen.checkpoint import random_qwen_dir
    from litelvlm.sa2va.checkpoint import random_sa2va_dir
    from litelvlm.unipixel.checkpoint import random_unipixel_dir
    from litelvlm.videoglamm.checkpoint import videoglamm_folder

    made = {"glamm-tiny": lambda: random_model_dir("tiny", 0),
            "qwen-tiny": lambda: random_qwen_dir("tiny", 0),
            "unipixel-tiny": lambda: random_unipixel_dir("tiny", 5),
            "sa2va-tiny": lambda: random_sa2va_dir("tiny", 0),
            "videoglamm-tiny": lambda: videoglamm_folder("videoglamm-tiny-random:0"),
            "clip-tiny-hf": lambda: resolve_random_model("tiny-random:0", "hf"),
            "clip-tiny-open_clip": lambda: resolve_random_model("tiny-random:0", "open_clip"),
            "clip-tiny336-hf": lambda: resolve_random_model("tiny336-random:0", "hf")}[name]()
    return Path(str(made).removeprefix("local-dir:"))


def _tensors(folder: Path) -> dict[str, torch.Tensor]:
    from safetensors.torch import load_file

    out: dict[str, torch.Tensor] = {}
    for f in sorted(folder.iterdir()):
        if f.suffix == ".safetensors":
            out.update(load_file(str(f)))
        elif f.suffix == ".bin":
            out.update(torch.load(f, map_location="cpu", weights_only=True))
    return out


def _files_digest(folder: Path) -> str:
    h = hashlib.sha256()
    for p in sorted(folder.rglob("*")):
        if p.is_file() and p.name != ".complete" and p.suffix != ".bin":
            h.update(str(p.relative_to(folder)).encode() + b"\0" + hashlib.sha256(p.read_bytes()).digest())
    return h.hexdigest()[:16]


@pytest.mark.parametrize("name", sorted(DIGESTS))
def test_each_tiny_preset_folder_is_byte_identical_to_the_recorded_one(name):
    folder = _folder(name)
    rel, tensors, files = DIGESTS[name]
    assert folder == Path(os.environ["LITELVLM_CACHE"]) / rel
    assert tensors_digest(_tensors(folder)) == tensors
    assert _files_digest(folder) == files


def test_the_families_write_their_random_folders_through_one_helper():
    """No family module builds a cache path or calls ``write_once`` itself: each asks
    :func:`~litelvlm.models.random_models.random_preset_folder` (CLIP:
    :func:`~litelvlm.models.random_models.cached_random_folder`), and the ``litelvlm_random`` record of
    ``config.json`` comes from
    :func:`~litelvlm.models.random_models.random_record`."""
    import litelvlm.clip as clip
    import litelvlm.glamm.checkpoint_writer as glamm_writer
    import litelvlm.glamm.pipeline as glamm
    import litelvlm.qwen.checkpoint as qwen
    import litelvlm.sa2va.checkpoint as sa2va
    import litelvlm.sa2va.random_folder as sa2va_random  # Sa2VA's record, for every backbone
    import litelvlm.unipixel.checkpoint as unipixel
    import litelvlm.videoglamm.checkpoint as videoglamm

    for module in (clip, glamm, glamm_writer, qwen, sa2va, sa2va_random, unipixel, videoglamm):
        src = inspect.getsource(module)
        assert "write_once" not in src and '"random-models"' not in src, module.__name__
        assert "cache_suffix" not in src and "def _write_json" not in src, module.__name__
    for module in (glamm_writer, qwen, sa2va_random, unipixel, videoglamm):
        assert "random_record(" in inspect.getsource(module), module.__name__
        assert '"built_on"' not in inspect.getsource(module), module.__name__


@pytest.mark.parametrize(("family", "preset", "fill", "name"), [
    ("glamm", "tiny", "init", "glamm-tiny-seed3"), ("glamm", "glamm-7b", "fast", "glamm-glamm-7b-seed3-fast"),
    ("qwen2.5-vl", "7b", "fast", "qwen2.5-vl-7b-seed3-fast"),
    ("unipixel", "3b", "init", "unipixel-3b-seed3")])
def test_a_preset_folder_is_named_by_family_preset_seed_and_fill(family, preset, fill, name):
    from litelvlm.models.random_models import random_folder_name

    assert random_folder_name(family, preset, 3, fill) == name


#: RANDOM_LAYOUT -> the digest of :data:`DIGESTS` it was raised with (a writer's new output, recorded above,
#: raises the layout, so that the folders an earlier writer left in a user's cache are written again)
LAYOUTS = {2: "e6ee2f15de23d35b"}


def test_the_layout_is_raised_with_the_recorded_folders():
    from litelvlm.models.random_models import RANDOM_LAYOUT

    digest = hashlib.sha256(repr(sorted(DIGESTS.items())).encode()).hexdigest()[:16]
    assert LAYOUTS.get(RANDOM_LAYOUT) == digest, (
        f"the recorded folders changed (digest {digest}): raise RANDOM_LAYOUT in "
        "litelvlm/models/random_models.py and record the new digest under it in LAYOUTS")


def test_a_folder_an_earlier_writer_left_is_written_again(fresh_cache, caplog):
    """A cached random folder records its writer (layout and transformers version); one without it, or with
    another, is written again with one warning, its checksums notwithstanding; one of this writer is
    reused."""
    from litelvlm.clip import resolve_random_model
    from litelvlm.models.random_models import random_writer

    folder = Path(resolve_random_model("tiny-random:0", "hf"))
    manifest = json.loads((folder / ".complete").read_text())
    assert manifest["writer"] == random_writer() and "litelvlm random layout" in manifest["writer"]
    inode = folder.stat().st_ino
    assert Path(resolve_random_model("tiny-random:0", "hf")).stat().st_ino == inode   # reused as it is
    for old in (None, "litelvlm random layout 1, transformers 4.57.0"):
        stale = {k: v for k, v in manifest.items() if k != "writer"}
        stale.update({} if old is None else {"writer": old})
        (folder / ".complete").write_text(json.dumps(stale))
        caplog.clear()
        again = Path(resolve_random_model("tiny-random:0", "hf"))
        assert again == folder and folder.stat().st_ino != inode, old
        inode = folder.stat().st_ino
        said = [r.getMessage() for r in caplog.records if "writing it again" in r.getMessage()]
        assert len(said) == 1 and (old or "an earlier writer") in said[0] and random_writer() in said[0], said
        assert json.loads((folder / ".complete").read_text())["writer"] == random_writer()
