"""``litelvlm.explore``: the explorer's data is the library's own (select/ground, similarity, text attention),
each method's selection is computed once per image and budget (one selection for every budget where the method
allows), the notebook widget redraws from the caches, and the command refuses bad input before torch is
imported."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from litelvlm.commands.select import kept_per_part
from litelvlm.explore.data import PREFIX_OF_PART, find_referent, load
from litelvlm.explore.notebook import sample_image


@pytest.fixture(scope="module")
def toy_scene(tmp_path_factory):
    """A one-scene toy REFER folder: (image file, [its sentence])."""
    return sample_image(tmp_path_factory.mktemp("explore"))


@pytest.fixture(scope="module")
def data(toy_scene):
    """The explorer's data for the toy scene, its sentence and a second text, on the tiny random GLaMM."""
    image, texts = toy_scene
    return load(image, [texts[0], "the thing in the corner"],
                methods=["litelvlm", "random", "litelvlm-context"])


def test_views_are_the_librarys_own(data):
    from litelvlm.pruning.scores import similarity

    inputs = data.prepared.selector_inputs()
    assert data.family == "glamm" and data.grid == (24, 24) and data.n == 576
    np.testing.assert_array_equal(data.similarity,
                                  similarity(inputs, layer=inputs.feature_layer).float().numpy())
    rows = inputs.text.attention(-1).float().mean(1)
    for t, eos in enumerate(inputs.text.eos_index.tolist()):
        np.testing.assert_array_equal(data.attention[t], rows[t, :eos + 1, :eos + 1].numpy())
        assert data.attention[t][-1].sum() == pytest.approx(1, abs=1e-5)  # the [EOS] row: causal softmax
        assert data.tokens[t][0] == "[SOS]" and data.tokens[t][-1] == "[EOS]" and len(
            data.tokens[t]) == eos + 1
    assert data.clip_texts == inputs.text.texts and data.banner.startswith("RANDOM WEIGHTS")
    assert data.window.shape == (336, 336, 3) and data.window.dtype == np.uint8


@pytest.mark.parametrize("method,budget", [("litelvlm", 64), ("litelvlm", 7), ("random", 32)])
def test_kept_tokens_are_what_ground_keeps(data, method, budget):
    out = data.pipe.ground(data.prepared, method, budget)
    kept = data.kept(method, budget)
    assert kept.indices == out.kept_indices.tolist()
    counts = {p: kept.parts.count(p) for p in kept.part_names()}
    assert counts == {k: v for k, v in kept_per_part(kept.indices, out.selection.parts).items() if v}


def test_litelvlm_parts_are_similarity_and_context(data):
    kept = data.kept("litelvlm", 64)
    assert set(kept.parts) == {"similarity", "context"}  # two texts: the union, then the context ranking


def test_one_selection_gives_every_budget_where_the_method_allows(data):
    """litelvlm-context: one library call at N; every K read from its ranking equals the library's selection
    at K."""
    from litelvlm.lvlm.prune import clip_side

    assert PREFIX_OF_PART == {"litelvlm-context": "context"}
    before = data.calls
    data.precompute("litelvlm-context")
    assert data.calls == before + 1
    for k in [*range(1, data.n, 13), data.n - 1, data.n]:
        _, sel = clip_side(data.pipe, data.prepared, data.spec("litelvlm-context"), k, None)
        assert data.kept("litelvlm-context", k).indices == sel.indices.tolist(), k


def test_each_selection_and_mask_is_computed_once(data):
    before = data.calls
    first = data.kept("random", 100)
    assert data.kept("random", 100) is first and data.calls == before + 1
    masks = data.masks("random", 100)
    assert masks.shape == (2, 336, 336) and masks.dtype == bool
    assert data.masks("random", 100) is masks and data.calls == before + 2
    out = data.pipe.ground(data.prepared, "random", 100)
    np.testing.assert_array_equal(masks[0], data.to_window(out.masks[0].numpy()))


def test_referent_outline_only_for_a_sentence_of_a_refer_image(data, toy_scene, tmp_path):
    assert data.referent[0] is not None and data.referent[0].shape == data.window.shape[:2]
    assert data.referent[0].any() and data.referent[1] is None
    assert "1 of 2 texts" in data.referent_note
    from PIL import Image

    Image.open(toy_scene[0]).save(tmp_path / "elsewhere.png")
    masks, note = find_referent(tmp_path / "elsewhere.png", toy_scene[1])
    assert masks == [None] and "not from a REFER folder" in note


def test_widget_state_changes_and_redraws_from_the_cached_selections(data):
    from litelvlm.explore.widget import Explorer

    ex = Explorer(data)  # litelvlm: every budget computed once, now
    assert ex.method.value == "litelvlm" and ex.budget.max == data.n and ex.budget.value == data.n
    assert all(("litelvlm", k) in data.selections for k in range(1, data.n + 1))
    data.kept("litelvlm-context", 1)  # its one selection (another test may have made it first)
    calls, redraws = data.calls, ex.redraws
    views = set()
    for k in (400, 64, 8, 64, 1):
        ex.budget.value = k
        views.add(ex.kept_view.value)
        assert f"K = {k} of N = 576" in ex.caption.value
    assert data.calls == calls, "moving the slider between computed budgets called the selector"
    assert ex.redraws == redraws + 5 and len(views) == 4  # K = 64 twice: the same picture
    ex.method.value = "litelvlm-context"
    assert data.calls == calls  # read from its one selection, computed above
    sim = ex.sim_view.value
    ex.text.value = 1
    assert ex.sim_view.value != sim and ex.token.options[-1][0] == "[EOS]"
    row = ex.attention.value
    ex.token.value = 1
    assert ex.attention.value != row and "attention row of" in ex.attention.value
    assert "press 'predict mask'" in ex.mask_note.value
    ex.predict_mask()
    assert data.calls == calls + 1 and "mask of text 2" in ex.mask_note.value
    ex.budget.value = 2
    ex.budget.value = 1
    assert data.calls == calls + 1 and "mask of text 2" in ex.mask_note.value  # the cached mask, shown again


def test_a_clip_model_shows_tokens_and_similarity_but_no_masks(toy_scene):
    from litelvlm.errors import LiteLVLMError
    from litelvlm.explore.widget import Explorer
    from litelvlm.toy import default_model_path

    clip_data = load(toy_scene[0], toy_scene[1], model=str(default_model_path()), methods=["litelvlm"])
    assert clip_data.family is None and not clip_data.predicts_masks and clip_data.banner.startswith(
        "TOY WEIGHTS")
    ex = Explorer(clip_data, precompute=False)
    ex.budget.value = 5
    assert clip_data.kept("litelvlm", 5).indices and "predicts no mask" in ex.mask_note.value
    with pytest.raises(LiteLVLMError, match="predicts no mask"):
        clip_data.masks("litelvlm", 5)


#: what the interpreter writes on stderr before each case's command
SEPARATOR = "\n--- next case ---\n"
CODE = """
import json, sys
from litelvlm.cli import main
for args in json.loads(sys.argv[1]):
    sys.stderr.write(sys.argv[2])
    sys.stderr.flush()
    rc = main(args)
    sys.stderr.flush()
    print(json.dumps({"rc": rc, "torch": "torch" in sys.modules}), flush=True)
"""

BAD_INPUTS = ["no-image", "no-text", "not-html", "file-as-folder", "bad-method", "video-model", "zero-budget",
              "missing-model-folder"]


def _bad_input_args(case: str, image: str, text: str, folder) -> list[str]:
    """The ``explore`` arguments of one bad-input case, writing (if anything) under ``folder``."""
    folder.mkdir()
    argv = {"image": image, "text": text, "out": str(folder / "page.html")}
    extra: list[str] = []
    if case == "no-image":
        argv["image"] = str(folder / "missing.png")
    elif case == "no-text":
        del argv["text"]
    elif case == "not-html":
        argv["out"] = str(folder / "page.png")
    # a missing folder is made (tests/litelvlm/explore/test_page.py); a file is not one
    elif case == "file-as-folder":
        (folder / "a-file").write_text("keep me")
        argv["out"] = str(folder / "a-file" / "runs" / "page.html")
    elif case == "bad-method":
        extra = ["--methods", "litelvlm,litlevlm"]
    elif case == "video-model":
        extra = ["--model", "videoglamm-tiny-random"]
    elif case == "zero-budget":
        extra = ["--budgets", "64,0"]
    else:
        extra = ["--model", str(folder / "no-model")]
    return ["explore", *[x for k, v in argv.items() for x in (f"--{k}", v)], *extra]


def test_bad_input_is_one_line_and_exit_2_before_torch(toy_scene, tmp_path):
    """Every case of :data:`BAD_INPUTS`, one after another in one fresh interpreter (the process is what is
    tested: torch never imported): exit 2, one line on stderr, no page written."""
    image, texts = toy_scene
    args = [_bad_input_args(case, image, texts[0], tmp_path / case) for case in BAD_INPUTS]
    done = subprocess.run([sys.executable, "-c", CODE, json.dumps(args), SEPARATOR], capture_output=True,
                          text=True, timeout=120)
    results = [json.loads(ln) for ln in done.stdout.strip().splitlines() if ln.startswith("{")]
    assert results == [{"rc": 2, "torch": False}] * len(BAD_INPUTS), done.stderr
    errs = done.stderr.split(SEPARATOR)[1:]
    assert len(errs) == len(BAD_INPUTS), done.stderr
    for case, err in zip(BAD_INPUTS, errs, strict=True):
        lines = [ln for ln in err.splitlines() if ln.strip()]
        assert len(lines) == 1, (case, lines)  # an argument error is one line too (no usage dump)
        assert "error" in lines[-1], case
        assert not list((tmp_path / case).glob("*.html")), case


def test_a_method_the_family_refuses_is_one_line_before_the_model_loads(toy_scene, tmp_path, capsys,
                                                                         unoffered_methods, monkeypatch):
    from litelvlm.cli import main
    from litelvlm.registry import families

    monkeypatch.setattr(families, "load_pipeline", lambda *a, **k: pytest.fail("the model was loaded"))
    rc = main(["explore", "--image", toy_scene[0], "--text", "x", "--model", "unipixel-tiny-random:0",
               "--methods", "clip-grid-only", "--out", str(tmp_path / "p.html")])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and len(err) == 1 and "clip-grid-only" in err[0] and not (tmp_path / "p.html").exists()



def test_unipixel_tokens_are_on_its_own_merged_grid(toy_scene, monkeypatch):
    """Another family: UniPixel's merged tokens (N from the image), CLIP's scores mapped onto them, its masks;
    the baseline `none` keeps every token at every budget, read from its one selection."""
    from PIL import Image

    from litelvlm.registry import families
    from tests.unipixel_tiny import tiny_unipixel

    pipe = tiny_unipixel()  # loaded once per test process, shared with the other UniPixel tests
    monkeypatch.setattr(families, "load_pipeline", lambda model, **kw: pipe)
    image, texts = toy_scene
    up = load(image, texts, model="unipixel-tiny-random:0", methods=["litelvlm", "none"])
    assert up.family == "unipixel" and up.grid == tuple(up.pipe.visual_grid(up.prepared)) and up.n < 576
    assert up.window.shape == up.pipe.visual_window(Image.open(image)).shape
    out = up.pipe.ground(up.prepared, "litelvlm", 10)
    assert up.kept("litelvlm", 10).indices == out.kept_indices.tolist()
    calls = up.calls
    assert up.kept("none", 3).indices == list(range(up.n)) and up.calls == calls + 1
    assert up.kept("none", 7) is up.kept("none", up.n) and up.calls == calls + 1
    # cached by ground
    assert up.masks("none", up.n).shape == (1, *up.window.shape[:2]) and up.calls == calls + 1


def test_sa2va_tokens_are_on_its_own_merged_grid(toy_scene):
    """The fourth family: Sa2VA's merged Qwen2.5-VL tokens (N from the image), its kept tokens as its
    ``ground`` keeps them, its masks on demand."""
    from PIL import Image

    image, texts = toy_scene
    sv = load(image, texts, model="sa2va-tiny-random:0", methods=["litelvlm", "none"])
    assert sv.family == "sa2va" and sv.grid == tuple(sv.pipe.visual_grid(sv.prepared)) and sv.n == sv.grid[
        0] * sv.grid[1]
    assert sv.window.shape == sv.pipe.visual_window(Image.open(image)).shape
    out = sv.pipe.ground(sv.prepared, "litelvlm", 10)
    assert sv.kept("litelvlm", 10).indices == out.kept_indices.tolist()
    assert sv.masks("none", sv.n).shape == (1, *sv.window.shape[:2])
