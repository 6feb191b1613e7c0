"""``litelvlm validate --arrangement`` (``analysis/validate/video.py``): a video model's arrangement of a
frame's kept CLIP tokens reaches its pipeline, is recorded (config.json, validate.csv's ``arrangement``
column) and labelled (screen, report.md); with the official ``pool`` a CLIP-side method's pruning changes no
LLM token and one null-result line says so; an image model refuses the option before anything is
written."""

from __future__ import annotations

import contextlib
import io
import json

import pandas as pd
import pytest

from analysis.validate.video import arrangement_lines, with_arrangement
from litelvlm.cli import main
from litelvlm.registry.families import resolve

MODEL = "videoglamm-tiny-random:0"


def _validate(out, *extra) -> tuple[int, str]:
    screen = io.StringIO()
    with contextlib.redirect_stdout(screen):
        rc = main(["validate", "--out", str(out), "--threads", "1", *map(str, extra)])
    return rc, screen.getvalue()


def _video(out, *extra) -> tuple[int, str]:
    return _validate(out, "--model", MODEL, "--methods", "litelvlm", "--budgets", 81, *extra)


@pytest.fixture(scope="module")
def pool_min(tmp_path_factory):
    out = tmp_path_factory.mktemp("validate_pool_min") / "out"
    rc, screen = _video(out, "--arrangement", "pool-min", "--no-figures")
    assert rc == 0, screen
    return out, screen


def test_pool_min_shortens_the_prompt_and_is_recorded(pool_min):
    out, screen = pool_min
    rows = pd.read_csv(out / "validate.csv").set_index("method")
    # 16 frames x min(9, 12)^2 + 16 x 64 video tokens against none's 16 x 144 + 16 x 64
    tokens = rows["visual_tokens_input"]
    assert tokens["none"] == 3328 and tokens["litelvlm"] == 2320
    assert rows.loc["litelvlm", "visual_tokens_kept"] < rows.loc["none", "visual_tokens_kept"]
    assert (rows["arrangement"] == "pool-min").all() and list(rows.columns[:2]) == ["budget", "arrangement"]
    assert json.loads((out / "config.json").read_text())["arrangement"] == "pool-min"
    label = ("arrangement pool-min (this project's reading: the LLM reads min(sqrt(K), 12)^2 tokens a "
             "frame): visual tokens the LLM reads a prompt: unpruned 3328; K=81 2320")
    assert label in screen and label in (out / "report.md").read_text()
    assert "null result" not in screen


@pytest.mark.slow   # the null-result line itself: test_lines_per_arrangement_and_method (default suite)
def test_default_pool_says_pruning_changes_no_llm_token(tmp_path):
    """No ``--arrangement``: the official pooling, every frame back to 144 tokens whatever K."""
    out = tmp_path / "run"
    rc, screen = _video(out)
    assert rc == 0, screen
    rows = pd.read_csv(out / "validate.csv")
    assert (rows["visual_tokens_input"] == 3328).all() and (rows["arrangement"] == "pool").all()
    nulls = [line for line in screen.splitlines() if line.startswith("null result")]
    assert nulls == ["null result: litelvlm's pruning changes no LLM token (3328 visual tokens in every row, "
                     "as `none`'s; arrangement pool); run --arrangement pool-min (this project's reading) to "
                     "see what pruning saves"]
    assert "arrangement pool (the official pooling: the LLM reads 12 x 12 = 144 tokens a frame" in screen


def test_an_image_model_refuses_arrangement(tmp_path, coco128, capsys):
    out = tmp_path / "run"
    rc, _ = _validate(out, "--refer-dir", coco128, "--arrangement", "pool-min", "--methods", "litelvlm",
                      "--budgets", 64)
    err = capsys.readouterr().err
    assert rc == 2 and "--arrangement: tiny-random:0 is an image model" in err
    assert not out.exists() or not any(out.iterdir())


@pytest.mark.parametrize(("argv", "why"), [(["--arrangement", "grid"], "invalid choice: 'grid'"),
                                           (["--arrangement", "pool-min", "--budgets", 80],
                                            "--arrangement pool-min pools a square grid: budgets [80]")])
def test_refused_before_writing(tmp_path, argv, why, capsys):
    out = tmp_path / "run"
    rc, _ = _validate(out, "--model", MODEL, "--methods", "litelvlm", *argv)
    assert rc == 2 and why in capsys.readouterr().err
    assert not out.exists() or not any(out.iterdir())


class _Spec:
    def __init__(self, method: str) -> None:
        self.baseline = method == "none"
        self.forward, self.uses_clip = None, method != "fastv"
        self.prunes_in_vision_tower = self.reads_clip = False


class _Pipe:
    def spec(self, method: str) -> _Spec:
        return _Spec(method)


def _args(arrangement, model=MODEL):
    return type("A", (), {"arrangement": arrangement, "model": resolve(model)})()   # resolved, as the options


def test_lines_per_arrangement_and_method():
    """A pool-min run at 196 still reads 144 a frame (the null result names only that method; an LLM-side
    method that prunes inside the LLM is not one); an image model gets no line and no column."""
    rows = pd.DataFrame({"method": ["none", "litelvlm", "fastv"], "budget": [576, 196, 196],
                         "visual_tokens_input": [3328, 3328, 3328], "visual_tokens_kept": [3328, 3328, 1132]})
    lines = arrangement_lines(_args("pool-min"), _Pipe(), rows)
    assert lines[0].endswith("visual tokens the LLM reads a prompt: unpruned 3328; K=196 3328")
    assert lines[1].startswith("null result: litelvlm's pruning changes no LLM token") and lines[1].endswith(
        "arrangement pool-min); a per-frame budget under 144 shrinks the prompt") and len(lines) == 2
    only_llm = arrangement_lines(_args("direct"), _Pipe(), rows[rows["method"] != "litelvlm"])
    assert only_llm == ["arrangement direct (this project's reading: the LLM reads the K projected tokens of "
                        "a frame, unpooled): no CLIP-side method ran, so it changes nothing here (LLM-side "
                        "methods prune the LLM's tokens)"]
    image = _args(None, "tiny-random:0")
    assert arrangement_lines(image, _Pipe(), rows) == [] and with_arrangement(rows, image) is rows
