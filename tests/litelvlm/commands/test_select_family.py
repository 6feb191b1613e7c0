"""``litelvlm select --model <grounding model>``: the family's pipeline runs the method, and the kept indices
are on the family's own token grid (UniPixel's merged tokens, whose number depends on the image; GLaMM's CLIP
patches)."""

from __future__ import annotations

import json

import pytest
import torch

from litelvlm.cli import main
from litelvlm.registry.families import names_family

EXPR = "the bowl on the left"


@pytest.fixture(scope="module")
def image_path(coco128):
    return sorted((coco128 / "images").iterdir())[0]


def _select(capsys, *args) -> tuple[int, str, str]:
    rc = main(["select", *map(str, args)])
    out = capsys.readouterr()
    return rc, out.out, out.err


def test_names_family_tells_grounding_models_from_clips(tmp_path):
    assert names_family("unipixel-tiny-random:0") and names_family("tiny-random:0") and names_family(
        "glamm-7b-random")
    assert not names_family("tiny336-random") and not names_family("openai/clip-vit-large-patch14-336")
    (tmp_path / "config.json").write_text(json.dumps({"architectures": ["CLIPModel"]}))
    assert not names_family(str(tmp_path))


def test_unipixel_select_equals_ground(image_path, capsys, tmp_path):
    from PIL import Image

    from litelvlm.registry.families import load_pipeline
    from litelvlm.unipixel.protocol import resized_size

    overlay = tmp_path / "kept.png"
    rc, out, _ = _select(capsys, "--model", "unipixel-tiny-random:0", "--image", image_path, "--text", EXPR,
                         "--budget", 16, "--json", "--save-overlay", overlay)
    assert rc == 0 and overlay.stat().st_size > 0
    got = json.loads(out)
    with Image.open(image_path) as im:
        h, w = resized_size(im.height, im.width)
        image = im.convert("RGB")
    assert got["grid"] == [h // 28, w // 28] and got["num_visual"] == (h // 28) * (w // 28)
    pipe = load_pipeline("unipixel-tiny-random:0")
    with torch.no_grad():
        want = pipe.ground(pipe.prepare(image, [EXPR]), "litelvlm", 16).kept_indices.tolist()
    assert got["indices"] == want and len(want) == 16 and got["family"] == "unipixel"
    rc, out, _ = _select(capsys, "--model", "unipixel-tiny-random:0", "--image", image_path, "--text", EXPR,
                         "--budget", 16, "--method", "fastv")  # an LLM-side method: fine on a grounding model
    assert rc == 0 and "from LLM layer 2" in out and "RANDOM WEIGHTS" in out


def test_glamm_select_runs_llm_side_methods(image_path, capsys):
    rc, out, _ = _select(capsys, "--model", "tiny-random:0", "--image", image_path, "--text", EXPR,
                         "--budget", 16, "--method", "dart", "--json")
    got = json.loads(out)
    assert rc == 0 and got["grid"] == [24, 24] and len(got["indices"]) == 16 and got["prune_layer"] == 2
    rc, _, err = _select(capsys, "--image", image_path, "--text", EXPR, "--budget", 16, "--method", "dart")
    assert rc == 2 and "needs a grounding model" in err  # a CLIP alone cannot run it


def test_select_takes_each_methods_own_flags_and_all(image_path, capsys):
    """The method's flags come from the registry (``--fastv-layer``), are checked against the model, and
    ``--budget all`` keeps every token."""
    rc, out, _ = _select(capsys, "--model", "tiny-random:0", "--image", image_path, "--text", EXPR,
                         "--budget", 16, "--method", "fastv", "--fastv-layer", 1, "--json")
    assert rc == 0 and json.loads(out)["prune_layer"] == 1
    rc, _, err = _select(capsys, "--model", "tiny-random:0", "--image", image_path, "--text", EXPR,
                         "--budget", 16, "--method", "fastv", "--fastv-layer", 99)
    assert rc == 2 and "--fastv-layer 99: fastv's layer must be in 1.." in err
    rc, out, _ = _select(capsys, "--model", "tiny-random:0", "--image", image_path, "--text", EXPR,
                         "--budget", "all", "--method", "none", "--json")
    assert rc == 0 and json.loads(out)["budget"] == 576 == len(json.loads(out)["indices"])


@pytest.mark.parametrize("args, why", [
    (["--budget", 16, "--pad"], "--pad chooses a CLIP's preprocessing"),
    (["--budget", 16], "give it with --text"),
    (["--budget", 10_000, "--text", EXPR], "budget"),
])
def test_family_select_refusals(image_path, capsys, args, why):
    rc, out, err = _select(capsys, "--model", "unipixel-tiny-random:0", "--image", image_path, *args)
    assert rc == 2 and why in err and out == ""
