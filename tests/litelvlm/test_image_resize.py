"""``--image-resize`` on every command that runs a model of a family with a resize of its own (Sa2VA's
Qwen2-VL processor): one option definition (the same help, choices and default everywhere), the same refusal
for a model whose family has no such resize (before anything loads, --out not created), the resize recorded in
``config.json`` for Sa2VA only, and the resumable commands refusing a Sa2VA folder written with another, or an
unrecorded (older), resize: one exit-2 line naming ``--image-resize``."""

from __future__ import annotations

import json

import pytest

from litelvlm.cli import build_parser, main
from litelvlm.image_resize import IMAGE_RESIZE_HELP, IMAGE_RESIZES
from tests.fixtures.cli import one_error_line

SA2VA = "sa2va-tiny-random:0"
#: every command that can run a Sa2VA model
COMMANDS = ("eval-grounding", "eval-video", "importance", "positions", "validate", "select", "explore",
            "retention")
#: the resumable ones (a folder of another configuration is refused)
RESUMABLE = ("eval-grounding", "eval-video", "importance", "positions", "validate")


def _argv(command: str, coco, out, model: str) -> list[str]:
    """``litelvlm COMMAND`` with its required options on the COCO-128 REFER folder and ``model``."""
    image = str(coco / "images" / "COCO_train2014_000000000034.jpg")
    data = [] if command in ("eval-video", "select", "explore", "retention") else ["--refer-dir", str(coco)]
    if command == "select":
        return ["select", "--image", image, "--text", "a zebra", "--budget", "8", "--method", "random",
                "--model", model]
    if command == "explore":
        return ["explore", "--image", image, "--text", "a zebra", "--out", str(out / "page.html"), "--model",
                model]
    return [command, *data, "--out", str(out), "--model", model]


def _option(command: str):
    parser = build_parser(only=command)
    sub = next(a for a in parser._actions if a.dest == "command").choices[command]
    return next((a for a in sub._actions if "--image-resize" in a.option_strings), None)


@pytest.mark.parametrize("command", COMMANDS)
def test_every_command_running_sa2va_offers_the_one_option(command):
    action = _option(command)
    assert action is not None, f"litelvlm {command} has no --image-resize"
    help_ = action.help.removesuffix(" (default: %(default)s)")
    assert (help_, list(action.choices), action.default) == (IMAGE_RESIZE_HELP, list(IMAGE_RESIZES),
                                                             "torchvision")


@pytest.mark.odd_case("arguments", "--image-resize pil for a model whose family resizes nothing (GLaMM, "
                      "UniPixel, a CLIP)", "eval-grounding, eval-video, importance, positions, validate, "
                      "select, explore, retention", "exit 2, one line naming the option, the model and the "
                      "family offering it, before the model loads; --out not created")
@pytest.mark.parametrize("command", COMMANDS)
def test_a_family_without_the_resize_is_refused_alike(command, coco128, tmp_path, capsys):
    model = {"eval-video": "unipixel-tiny-random:0",
             "retention": "tiny336-random"}.get(command, "tiny-random:0")
    out = tmp_path / "out"
    rc = main([*_argv(command, coco128, out, model), "--image-resize", "pil"])
    line = one_error_line(rc, capsys.readouterr().err, command)
    assert f"--image-resize pil: model {model!r} is of a family whose processor offers no such resize " \
           "(offered by: sa2va)" in line
    assert not out.exists()


def _old_folder(out, **recorded) -> None:
    """A results folder of a Sa2VA run (its config.json: the model, and ``recorded``)."""
    out.mkdir(parents=True)
    (out / "config.json").write_text(json.dumps({"model": SA2VA, "seed": 0, **recorded}))


@pytest.mark.odd_case("a run owns its --out", "a Sa2VA --out written with another, or an unrecorded (older), "
                      "--image-resize", "eval-grounding, eval-video, importance, positions, validate",
                      "exit 2, one line naming --image-resize, before the model loads; the folder untouched")
@pytest.mark.parametrize("command", RESUMABLE)
@pytest.mark.parametrize("recorded", [{"image_resize": "pil"}, {}], ids=["another", "unrecorded"])
def test_a_folder_of_another_resize_is_not_resumed(command, recorded, coco128, tmp_path, capsys):
    out = tmp_path / "out"
    _old_folder(out, **recorded)
    before = (out / "config.json").read_bytes()
    line = one_error_line(main(_argv(command, coco128, out, SA2VA)), capsys.readouterr().err, command)
    assert "holds results of a different configuration (differs in: --image-resize)" in line
    assert (out / "config.json").read_bytes() == before and [p.name for p in out.iterdir()] == ["config.json"]


@pytest.mark.parametrize("model, record", [("tiny-random:0", {}), ("unipixel-tiny-random:0", {}),
                                           ("tiny336-random", {}), (SA2VA, {"image_resize": "torchvision"})])
def test_only_a_family_with_a_resize_records_it(model, record, tmp_path):
    """What every command's config.json gets: the resize for Sa2VA, nothing for the others (their folders as
    before), and so the early resume check passes their folders written before the option."""
    from analysis.common.runs.study import check_early
    from litelvlm.registry.families import image_resize_record

    assert image_resize_record("torchvision", model) == record
    (tmp_path / "config.json").write_text(json.dumps({"model": model, "seed": 0}))
    if record:
        with pytest.raises(Exception, match=r"differs in: --image-resize\)"):
            check_early(tmp_path, {"model": model, "seed": 0, "image_resize": "torchvision"})
    else:
        check_early(tmp_path, {"model": model, "seed": 0, "image_resize": "torchvision"})   # no refusal


#: (command, its options beyond _argv's for a short Sa2VA run): positions the default representative, the rest
#: slow
RUNS = [pytest.param("positions", ["--methods", "random", "--budgets", "8"], id="positions"),
        *(pytest.param(c, extra, id=c, marks=pytest.mark.slow) for c, extra in (
            ("importance", ["--limit-images", "1", "--max-sentences", "1"]),
            ("validate", ["--methods", "random", "--budgets", "8"]),
            ("retention", ["--methods", "random", "--budgets", "8"])))]


@pytest.mark.parametrize("command, extra", RUNS)
def test_the_resize_reaches_the_pipeline_and_is_recorded(command, extra, coco128, tmp_path, capsys):
    out = tmp_path / "out"
    assert main([*_argv(command, coco128, out, SA2VA), *extra, "--image-resize", "pil"]) == 0
    config = json.loads((out / "config.json").read_text())
    assert config["image_resize"] == "pil"
    if "lvlm" in config:   # retention records the pipeline's own description
        assert config["lvlm"]["image_resize"].startswith("pil (this project's option")
    if command in RESUMABLE:   # the default resize is another configuration: refused before the model loads
        capsys.readouterr()
        line = one_error_line(main([*_argv(command, coco128, out, SA2VA), *extra]), capsys.readouterr().err,
                              command)
        assert "differs in: --image-resize" in line
