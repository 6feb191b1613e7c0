"""A model string is resolved once into a :class:`litelvlm.registry.resolved_model.ResolvedModel` (its
family's card, the preset or folder, the seed, what kind of weights, the folder's ``config.json`` read once)
that travels: a resolved value is never resolved again, and every question the suite asks of a model (its
family, card, input, N, hub folder, default CLIP) is answered from it without reading the folder again."""

from __future__ import annotations

import copy
import dataclasses
import json
import pickle
from pathlib import Path

import pytest

from litelvlm.errors import LiteLVLMError
from litelvlm.models.model_spec import ModelSpec
from litelvlm.registry import families
from litelvlm.registry.provenance import weights_kind
from litelvlm.registry.resolved_model import (
    CHECKPOINT,
    HUB_ID,
    RANDOM_FOLDER,
    RANDOM_PRESET,
    ResolvedClip,
    ResolvedModel,
    clip_of,
    plain,
    record,
)
from tests.fixtures.model_folders import config_reads, fake_family_folder


def test_a_random_preset_resolves_without_reading_anything(tmp_path):
    with config_reads() as reads:
        m = families.resolve("sa2va-tiny-random:3")
    assert reads == [] and isinstance(m, ResolvedModel) and isinstance(m.spec, ModelSpec)
    assert (m.card.name, m.weights, m.preset, m.seed, m.path, m.config) == (
        "sa2va", RANDOM_PRESET, "tiny", 3, None, None)
    assert (m.text, m.name, m.rest, m.family, m.random_weights) == (
        "sa2va-tiny-random:3", "sa2va-tiny-random", "3", "sa2va", True)
    assert families.resolve("tiny-random").seed == 0   # no :SEED: the card's default


@pytest.mark.parametrize("family", ["glamm", "unipixel", "videoglamm", "sa2va"])
def test_a_folder_is_resolved_with_its_config_read_once(family, tmp_path):
    random = fake_family_folder(tmp_path / "random", family, record={"preset": "tiny", "seed": 4})
    released = fake_family_folder(tmp_path / "released", family)
    with config_reads() as reads:
        r, c = families.resolve(str(random)), families.resolve(str(released))
    assert len(reads) == 2   # one read each
    assert (r.card.name, r.weights, r.preset, r.seed, r.path) == (family, RANDOM_FOLDER, "tiny", 4, random)
    assert (c.card.name, c.weights, c.preset, c.seed, c.path) == (family, CHECKPOINT, None, None, released)
    assert r.config["litelvlm_random"] == {"preset": "tiny", "seed": 4} and "litelvlm_random" not in c.config


def test_a_released_checkpoints_hub_id_resolves_to_its_family_without_a_download(tmp_path):
    m = families.resolve("ByteDance/Sa2VA-Qwen2_5-VL-3B")
    assert (m.card.name, m.weights, m.path, m.config) == ("sa2va", HUB_ID, None, None)


def test_the_resolved_value_travels_and_every_lookup_reads_it(tmp_path):
    """Resolved once: resolving it again is the value itself, and the family's lookups read no file."""
    folder = fake_family_folder(tmp_path / "m", "sa2va", record={"preset": "tiny", "seed": 0})
    m = families.resolve(str(folder))
    with config_reads() as reads:
        assert families.resolve(m) is m and ModelSpec.of(m) is m.spec
        assert families.card_of(m) is m.card and families.family_of(m) == "sa2va"
        assert families.names_family(m) and families.family_input(m) == "image" == m.input
        families.check_budgets_fit(m, [16])
        m.check_budgets_fit([16])
        assert families.hub_folder(m) is None is m.hub_folder() and m.local() is m
        assert families.exif_transpose(m) is False is m.exif_transpose
        families.check_image_resize("pil", m)
        assert families.image_resize_record("pil", m) == {"image_resize": "pil"}
        assert m.image_resize_record("pil") == {"image_resize": "pil"}
    assert reads == []


def test_the_resolved_value_carries_the_lookups():
    """The budget check, the EXIF rule, the resizes, the hub folder and the loading are the value's own."""
    m, hub = families.resolve("tiny-random:0"), families.resolve("ByteDance/Sa2VA-Qwen2_5-VL-3B")
    assert m.exif_transpose is True and m.image_resizes == () and m.image_resize_record("torchvision") == {}
    assert (m.fixed_num_visual, hub.fixed_num_visual) == (families.card("glamm").fixed_num_visual(m.spec),
                                                          families.card("sa2va").fixed_num_visual(hub.spec))
    if hub.fixed_num_visual is not None:
        with pytest.raises(LiteLVLMError, match="ByteDance/Sa2VA-Qwen2_5-VL-3B"):
            hub.check_budgets_fit([hub.fixed_num_visual + 1])
    assert m.pipeline_class() is families.get_family("glamm") and callable(m.load)


def test_the_resolved_value_is_a_frozen_dataclass_not_a_string():
    """A value that is what it says: no str subclass; it equals no string, and the text is read explicitly."""
    m = families.resolve("tiny-random:2")
    assert dataclasses.is_dataclass(m) and type(m).__dataclass_params__.frozen and not isinstance(m, str)
    assert m != "tiny-random:2" and m == families.resolve("tiny-random:2")
    assert (m.text, str(m), f"{m}", m.spec) == ("tiny-random:2",) * 4 and type(m.text) is str
    with pytest.raises(dataclasses.FrozenInstanceError):
        m.seed = 3
    with pytest.raises(TypeError):
        json.dumps({"model": m})   # never written as itself: a writer reads its text


def test_the_resolved_value_is_recorded_as_its_text(tmp_path):
    """Tables, config.json and messages stay as they were: the writer records the text
    (:func:`~litelvlm.registry.resolved_model.record` for an options dataclass)."""
    m = families.resolve("tiny-random:2")
    assert copy.copy(m) is m and copy.deepcopy(m) is m
    holder = dataclasses.make_dataclass("Options", [("model", object), ("models", list), ("seed", int)])(
        m, [m, "x"], 0)   # a study's options, recorded
    assert json.dumps(record(holder)) == ('{"model": "tiny-random:2", "models": ["tiny-random:2", "x"], '
                                          '"seed": 0}')
    assert holder.model is m and plain({"a": (m,)}) == {"a": ("tiny-random:2",)}
    back = pickle.loads(pickle.dumps(m))   # to a worker process: resolved again there
    assert isinstance(back, ResolvedModel) and (back, back.card.name, back.seed) == (m, "glamm", 2)


def test_the_folder_of_a_random_folder_is_a_path(tmp_path):
    folder = fake_family_folder(tmp_path / "m", "unipixel")
    assert families.resolve(f"{folder}").path == Path(folder)


def test_a_clip_folder_resolves_by_the_same_resolution_with_its_config_read_once(tmp_path):
    """A CLIP's string goes through the families' one resolution (``family_or_clip``): a folder of no family
    has its config.json read once, held by the resolved CLIP, and no later question reads it again."""
    folder = fake_family_folder(tmp_path / "clip", "glamm", architectures=["CLIPModel"])
    with config_reads() as reads:
        c = families.family_or_clip(str(folder))
        assert isinstance(c, ResolvedClip) and not isinstance(c, str) and dataclasses.is_dataclass(c)
        assert (c.text, c.backend, c.path, c.config["architectures"]) == (str(folder), "hf", folder,
                                                                          ["CLIPModel"])
        assert families.family_or_clip(c) is c and not families.names_family(c)
        with pytest.raises(LiteLVLMError, match="no family reads them"):
            families.resolve(c)
        assert weights_kind(c) == "real" and families.exif_transpose(c) is True
    assert len(reads) == 1 and "resolved_model.py" in reads[0], reads
    assert clip_of("ViT-L-14-336:openai").backend == "open_clip" and clip_of("tiny336-random").path is None
    assert families.family_or_clip("tiny-random:0") == families.resolve("tiny-random:0")
