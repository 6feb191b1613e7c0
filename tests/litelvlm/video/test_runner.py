"""The video contract (:mod:`litelvlm.video.runner`): every family registered with a video path resolves to a
:class:`VideoEval`, a family without one is refused with a line naming it, and the video study
(``analysis/video``) names no family in code: it reaches each one through the registry."""

from __future__ import annotations

import ast
import io
import re
import tokenize
from pathlib import Path

import pytest

from litelvlm.cli import main
from litelvlm.errors import LiteLVLMError
from litelvlm.registry.families import card, family_names, video_eval
from litelvlm.video.runner import VideoEval

STUDY = Path(__file__).resolve().parents[3] / "analysis" / "video"
MODELS = {"videoglamm": "videoglamm-tiny-random:0", "unipixel": "unipixel-tiny-random:0",
          "sa2va": "sa2va-tiny-random:0"}


@pytest.mark.parametrize("family", sorted(MODELS))
def test_every_video_family_resolves_through_the_registry(family):
    assert card(family).video_eval
    ev = video_eval(MODELS[family])
    assert isinstance(ev, VideoEval) and ev.note


def test_a_family_without_a_video_path_is_refused(tmp_path, capsys):
    assert {n for n in family_names() if card(n).video_eval} == set(MODELS)
    with pytest.raises(LiteLVLMError, match="the glamm family has no video path; eval-video runs the "
                                            "families sa2va, unipixel, videoglamm"):
        video_eval("tiny-random:0")
    assert main(["eval-video", "--out", str(tmp_path / "o"), "--model", "tiny-random:0"]) == 2
    assert "no video path" in capsys.readouterr().err and not (tmp_path / "o").exists()


@pytest.mark.parametrize("family", ["sa2va", "unipixel"])
def test_a_method_reading_the_masks_gradient_is_refused_before_any_part(family, tmp_path, capsys):
    """``saliency`` backpropagates from the predicted masks to the visual tokens: a video path whose masks
    come from SAM 2's memory propagation, run without gradients (UniPixel, Sa2VA), refuses it before anything
    is loaded or written, in its own words; VideoGLaMM's frame-by-frame masks carry the gradient: its path
    offers it (run in the slow case below)."""
    assert video_eval(MODELS["videoglamm"]).method_errors(["saliency"], []) == []
    out = tmp_path / "o"
    rc = main(["eval-video", "--model", MODELS[family], "--methods", "saliency", "--budgets", "4",
               "--anno-sets", "0", "--synthetic-videos", "1", "--synthetic-frames", "2", "--out", str(out),
               "--quiet"])
    err = capsys.readouterr().err
    assert rc == 2 and not out.exists(), err
    assert "saliency backpropagates from the masks to the visual tokens" in err and "without gradients" in err
    assert video_eval(MODELS[family]).method_errors(["saliency"], []) == [err.split("error: ", 1)[1].strip()]


@pytest.mark.slow
def test_videoglamms_video_path_runs_the_saliency_oracle(tmp_path, capsys):
    """VideoGLaMM's masks carry the gradient to its visual tokens: ``eval-video`` runs ``saliency`` (about
    17 CPU-s on the tiny model: a backward pass over the whole video's sequence)."""
    rc = main(["eval-video", "--model", MODELS["videoglamm"], "--methods", "saliency", "--budgets", "4",
               "--anno-sets", "0", "--synthetic-videos", "1", "--synthetic-frames", "2", "--out",
               str(tmp_path / "o"), "--quiet"])
    assert rc == 0, capsys.readouterr().err


def _code_words(path: Path) -> list[str]:
    """Identifiers, import paths and one-word string constants of a module: its docstrings and comments
    aside."""
    source = path.read_text()
    docstrings = {(n.body[0].value.lineno, n.body[0].value.col_offset) for n in ast.walk(ast.parse(source))
                  if isinstance(n, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef)
                  and n.body
                  and isinstance(n.body[0], ast.Expr) and isinstance(n.body[0].value, ast.Constant)
                  and isinstance(n.body[0].value.value, str)}
    words = []
    for tok in tokenize.generate_tokens(io.StringIO(source).readline):
        if tok.type == tokenize.NAME:
            words.append(tok.string)
        elif tok.type == getattr(tokenize, "FSTRING_MIDDLE", None):   # Python 3.12's f-string text
            words += [tok.string] if len(tok.string.split()) == 1 else []
        elif tok.type == tokenize.STRING and tok.start not in docstrings:
            text = ast.literal_eval(tok.string) if not re.match(r"^[rbuRBU]*[fF]", tok.string) else tok.string
            words += [w for w in str(text).split() if len(str(text).split()) == 1]
    return words


@pytest.mark.parametrize("module", [p.name for p in sorted(STUDY.glob("*.py"))])
def test_the_video_study_names_no_family(module):
    names = family_names()
    found = sorted({w for w in _code_words(STUDY / module) if any(n in w.lower() for n in names)})
    assert not found, f"analysis/video/{module} names a family: {found}"


def test_the_check_finds_a_family_name(tmp_path):
    bad = tmp_path / "bad.py"
    bad.write_text('"""Doc naming VideoGLaMM is fine."""\nfrom litelvlm.unipixel import x\n'
                   'if family == "sa2va":\n    pass\nhelp = "prose naming GLaMM is fine"\n')
    words = _code_words(bad)
    assert {"unipixel", "sa2va"} <= {w for w in words if w in family_names()} and "GLaMM" not in words
