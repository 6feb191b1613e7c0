"""A run reads its model folder's ``config.json`` once: the resolution reads it (``--model``, at the options'
edge) and the value it makes travels to the loader, the run's records (identity, weights kind) and the merged
tables; nothing asks the folder again (transformers' own processor loader, which reads the file itself, is not
the suite's code and is not counted)."""

from __future__ import annotations

import shutil

import pytest

from litelvlm.cli import main
from litelvlm.clip import resolve_random_model
from litelvlm.glamm.random_model import random_model_dir
from litelvlm.registry import families
from litelvlm.sa2va.checkpoint import sa2va_folder
from tests.fixtures.model_folders import config_reads


def _random_folder(tmp_path, preset: str):
    """A copy of a random preset's folder (written by its family's writer) outside the cache, so that no rule
    of where a folder lies answers for it."""
    resolved = families.resolve(preset)
    if resolved.family == "glamm":
        folder = random_model_dir(resolved.preset, resolved.seed)
    else:
        folder = sa2va_folder(resolved)
    return shutil.copytree(folder, tmp_path / "model")


RUNS = {
    "eval-grounding": ["--limit-images", "1", "--methods", "none,fastv", "--budgets", "16"],
    "validate": ["--methods", "none", "fastv", "--budgets", "16", "--repeats", "1"],
}


def _reads_of_a_run(tmp_path, coco128, preset: str, command: str) -> list[str]:
    folder = _random_folder(tmp_path, preset)
    clip = ["--clip", "tiny336-random:0"] if families.family_of(preset) == "glamm" else []
    with config_reads() as reads:
        rc = main([command, "--refer-dir", str(coco128), "--out", str(tmp_path / "out"), "--model",
                   str(folder), *clip, *RUNS[command]])
    assert rc == 0
    return [r for r in reads if r.startswith(str(folder))]


def test_eval_grounding_reads_the_folders_config_once(tmp_path, coco128):
    reads = _reads_of_a_run(tmp_path, coco128, "sa2va-tiny-random:0", "eval-grounding")
    assert len(reads) == 1 and "resolved_model.py" in reads[0], reads


@pytest.mark.slow
@pytest.mark.parametrize(("preset", "command"), [("tiny-random:0", "eval-grounding"),
                                                 ("tiny-random:0", "validate"),
                                                 ("sa2va-tiny-random:0", "validate")])
def test_every_run_reads_the_folders_config_once(preset, command, tmp_path, coco128):
    reads = _reads_of_a_run(tmp_path, coco128, preset, command)
    assert len(reads) == 1 and "resolved_model.py" in reads[0], reads


def test_select_reads_a_clip_folders_config_once(tmp_path, coco128):
    """A CLIP folder's string is resolved by the same resolution as a family's (``select``'s ``--model``):
    its config.json read once there, the CLIP loader checking what it read (transformers' own reads are not
    the suite's)."""
    folder = shutil.copytree(resolve_random_model("tiny336-random:0", "hf"), tmp_path / "clip")
    image = sorted((coco128 / "images").iterdir())[0]
    with config_reads() as reads:
        rc = main(["select", "--model", str(folder), "--image", str(image), "--method", "litelvlm",
                   "--budget", "8", "--text", "a dog", "--json"])
    assert rc == 0
    reads = [r for r in reads if r.startswith(str(folder))]
    assert len(reads) == 1 and "resolved_model.py" in reads[0], reads
