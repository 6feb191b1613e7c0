"""A random model loaded by its folder path pairs with the random CLIP of its preset and seed, as its model
string does (so the CLIP-side methods run offline); a checkpoint folder without ``litelvlm_random`` pairs with
ViT-L/14-336, LiteLVLM's."""

from __future__ import annotations

import pytest

from litelvlm.clip import DEFAULT_HF_MODEL

FAMILIES = {"sa2va": "litelvlm.sa2va.pipeline", "unipixel": "litelvlm.unipixel.pipeline",
            "videoglamm": "litelvlm.videoglamm.pruning"}


@pytest.mark.parametrize("family", FAMILIES)
@pytest.mark.parametrize("preset,seed,want",
                         [("tiny", 0, "tiny336-random:0"), ("tiny", 5, "tiny336-random:5"),
                                              ("3b", 2, "vit-l-14-336-random:2")])
def test_a_random_folder_pairs_with_the_random_clip_of_its_seed(family, preset, seed, want, tmp_path):
    import importlib

    default_clip = importlib.import_module(FAMILIES[family]).default_clip
    folder = str(tmp_path / "model")
    assert default_clip(folder, {"litelvlm_random": {"preset": preset, "seed": seed}}) == want
    assert default_clip(folder, {"architectures": ["x"]}) == default_clip(folder) == DEFAULT_HF_MODEL


def test_the_written_sa2va_folder_records_what_pairs_it():
    from litelvlm.models.model_folder import read_config
    from litelvlm.sa2va.checkpoint import sa2va_folder
    from litelvlm.sa2va.pipeline import default_clip

    folder = sa2va_folder("sa2va-tiny-random:0")
    assert default_clip(str(folder), read_config(folder)) == default_clip(
        "sa2va-tiny-random:0") == "tiny336-random:0"


@pytest.mark.slow   # loads the model; the default representatives above read the same config
def test_loading_a_random_sa2va_by_its_folder_path_pairs_the_random_clip():
    from litelvlm.registry.families import load_pipeline
    from litelvlm.sa2va.checkpoint import sa2va_folder

    pipe = load_pipeline(str(sa2va_folder("sa2va-tiny-random:0")))
    assert pipe.describe()["clip"]["model"] == "tiny336-random:0"
