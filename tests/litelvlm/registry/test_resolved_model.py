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

from litelvlm.models.model_spec import ModelSpec
from litelvlm.registry import families
from litelvlm.registry.resolved_model import CHECKPOINT, HUB_ID, RANDOM_FOLDER, RANDOM_PRESET, ResolvedModel
from tests.fixtures.model_folders import config_reads, fake_family_folder


def test_a_random_preset_resolves_without_reading_anything(tmp_path):
    with config_reads() as reads:
        m = families.resolve("sa2va-tiny-random:3")
    assert reads == [] and isinstance(m, ResolvedModel) and isinstance(m, ModelSpec)
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
        assert families.resolve(m) is m and families.resolve(ModelSpec.of(m)) is m
        assert families.card_of(m) is m.card and families.family_of(m) == "sa2va"
        assert families.names_family(m) and families.family_input(m) == "image"
        families.check_budgets_fit(m, [16])
        assert families.hub_folder(m) is None and families.exif_transpose(m) is False
        families.check_image_resize("pil", m)
        assert families.image_resize_record("pil", m) == {"image_resize": "pil"}
    assert reads == []


def test_the_resolved_value_is_its_text_wherever_a_string_goes(tmp_path):
    """Tables, config.json and messages stay as they were: it writes, compares and hashes as its text."""
    m = families.resolve("tiny-random:2")
    assert m == "tiny-random:2" and hash(m) == hash("tiny-random:2") and f"{m!r}" == "'tiny-random:2'"
    assert json.dumps({"model": m}) == '{"model": "tiny-random:2"}' and str(m) == "tiny-random:2"
    assert copy.copy(m) is m and copy.deepcopy(m) is m
    holder = dataclasses.make_dataclass("Options", [("model", str)])(m)   # a study's options, recorded
    assert json.dumps(dataclasses.asdict(holder)) == '{"model": "tiny-random:2"}'
    back = pickle.loads(pickle.dumps(m))
    assert isinstance(back, ResolvedModel) and (back, back.card.name, back.seed) == (m, "glamm", 2)
    with pytest.raises(dataclasses.FrozenInstanceError):
        m.seed = 3


def test_the_folder_of_a_random_folder_is_a_path(tmp_path):
    folder = fake_family_folder(tmp_path / "m", "unipixel")
    assert families.resolve(f"{folder}").path == Path(folder)
