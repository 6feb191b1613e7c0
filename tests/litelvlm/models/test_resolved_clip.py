"""A CLIP's model string resolved once (:func:`litelvlm.models.resolved_clip.resolve_clip`, the CLIP branch of
the families' resolution): a frozen value holding its backend, folder and ``config.json`` as read once, which
the CLIP loader checks instead of reading the file again."""

from __future__ import annotations

import dataclasses
import pickle
import shutil

import pytest

from litelvlm.clip import load_clip, resolve_random_model
from litelvlm.models.resolved_clip import ResolvedClip, clip_of, resolve_clip
from tests.fixtures.model_folders import config_reads


@pytest.fixture(scope="module")
def clip_folder(tmp_path_factory):
    """A copy of the random CLIP's folder (a save_pretrained one) outside the cache."""
    folder = resolve_random_model("tiny336-random:0", "hf")
    return shutil.copytree(folder, tmp_path_factory.mktemp("c") / "clip")


def test_a_clip_string_resolves_to_a_frozen_value_with_its_backend():
    c = resolve_clip("ViT-L-14-336:openai")
    assert dataclasses.is_dataclass(c) and not isinstance(c, str) and (c.backend, c.path, c.config) == (
        "open_clip", None, None)
    assert (str(c), c.text) == ("ViT-L-14-336:openai",) * 2 and resolve_clip(c) is c
    assert resolve_clip("tiny336-random").backend == "hf"
    assert clip_of("openai/clip-vit-large-patch14-336").backend == "hf"
    with pytest.raises(dataclasses.FrozenInstanceError):
        c.backend = "hf"
    assert pickle.loads(pickle.dumps(c)) == c


def test_the_clip_loader_reads_the_folders_config_once(clip_folder):
    """Resolved once, the folder's config.json is read once; the loader checks what the resolution read."""
    with config_reads() as reads:
        c = resolve_clip(str(clip_folder))
    assert len(reads) == 1 and isinstance(c, ResolvedClip) and c.config["model_type"] == "clip"
    with config_reads() as reads:
        clip = load_clip(c)
    assert [r for r in reads if r.startswith(str(clip_folder))] == [] and clip.name == str(clip_folder)
    with config_reads() as reads:
        load_clip(str(clip_folder))   # a plain string: resolved here, read once
    assert len([r for r in reads if r.startswith(str(clip_folder))]) == 1
