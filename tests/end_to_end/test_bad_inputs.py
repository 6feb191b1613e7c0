"""Bad inputs fail cleanly on every subcommand that takes them: exit 2, one stderr line naming the
cause, no traceback, nothing written. One test per class, each with one mechanism behind it:

* model strings and folders (``--model``, ``--clip``, ``--sam``): ``litelvlm.clip.load_clip`` and the
  GLaMM checkpoint loader turn every loader failure into a ``LiteLVLMError`` naming the model;
* output paths in a folder that cannot be written: ``check_common_options``, before any work;
* a non-integer where an integer is expected (also inside ``--image-ids 576,1.5``): parse time
  (argparse's ``int`` and ``arg(each=int)``), before the subcommand's heavy imports (budgets are Budgets:
  tests/end_to_end/test_budget_flags.py);
* ``figures --results`` on a folder without results; an unreadable image in ``retention``.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
from pathlib import Path

import pytest

from litelvlm.cli import all_commands, build_parser, main

CLIP_COMMANDS = ["reversal", "sink", "retention", "demo", "select"]
GLAMM_COMMANDS = ["eval-grounding", "importance", "validate"]
CLIP_CASES = ["empty folder", "no model_type", "truncated safetensors", "open_clip wrong architecture",
              "bad seed", "unknown name"]
GLAMM_CASES = ["empty folder", "no model_type", "truncated safetensors", "a CLIP folder", "bad seed",
               "unknown name"]
SAM_CASES = ["empty folder", "unknown folder", "unknown hub name"]


@pytest.fixture(scope="module")
def bad_models(tmp_path_factory, tiny_hf_clip_dir, tiny_open_clip_dir) -> dict[str, dict[str, str]]:
    """{"clip": {case: model string}, "glamm": {...}, "sam": {...}}: models that cannot be loaded."""
    from litelvlm.glamm.checkpoint_writer import save_random_glamm

    root = tmp_path_factory.mktemp("bad_models")
    (root / "empty").mkdir()
    (root / "no_model_type").mkdir()
    config = json.loads((tiny_hf_clip_dir / "config.json").read_text())
    config.pop("model_type")
    (root / "no_model_type" / "config.json").write_text(json.dumps(config))
    shutil.copytree(tiny_hf_clip_dir, root / "truncated")
    weights = root / "truncated" / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[: weights.stat().st_size // 2])
    shutil.copytree(tiny_open_clip_dir, root / "wrong_architecture")  # weights of width 48, config says 64
    oc_config = json.loads((root / "wrong_architecture" / "open_clip_config.json").read_text())
    oc_config["model_cfg"]["vision_cfg"].update(width=64, head_width=16)
    (root / "wrong_architecture" / "open_clip_config.json").write_text(json.dumps(oc_config))
    glamm = save_random_glamm(root / "glamm_truncated", "tiny", 0, fmt="safetensors")
    for f in glamm.glob("*.safetensors"):
        f.write_bytes(f.read_bytes()[: f.stat().st_size // 2])
    shared = {"empty folder": str(root / "empty"), "no model_type": str(root / "no_model_type"),
              "bad seed": "tiny-random:abc"}
    return {
        "clip": {**shared, "truncated safetensors": str(root / "truncated"),
                 "open_clip wrong architecture": f"local-dir:{root / 'wrong_architecture'}",
                 "unknown name": "no-such-clip-model"},
        "glamm": {**shared, "truncated safetensors": str(glamm), "a CLIP folder": str(tiny_hf_clip_dir),
                  "unknown name": "no-such-glamm-model"},
        "sam": {"empty folder": str(root / "empty"), "unknown folder": str(root / "no-such-folder"),
                "unknown hub name": "no-such-org/no-such-sam"},
    }


def _argv(command: str, out: Path, refer: Path) -> list[str]:
    """The command with everything it needs to reach the model: an output folder and the data."""
    if command == "select":
        image = next((refer / "images").iterdir())
        return ["select", "--image", str(image), "--budget", "4", "--text", "a circle",
                "--save-overlay", str(out / "overlay.png")]
    if command == "demo":
        return ["demo", "--smoke", "--out", str(out)]
    return [command, "--out", str(out), "--refer-dir", str(refer)]


def _assert_clean(rc: int, err: str, command: str, names: str, out: Path) -> None:
    """Exit 2, exactly one stderr line, ``litelvlm COMMAND: error: ...`` naming ``names``, nothing written."""
    lines = [line for line in err.splitlines() if line.strip()]
    assert rc == 2, err
    assert "Traceback" not in err
    assert len(lines) == 1 and lines[0].startswith(f"litelvlm {command}: error: "), lines
    assert names in lines[0], lines[0]
    assert not out.exists() or not any(out.iterdir()), sorted(out.rglob("*"))


MODEL_CASES = ([(c, "--model", "clip", case) for c in CLIP_COMMANDS for case in CLIP_CASES]
               + [(c, "--model", "glamm", case) for c in GLAMM_COMMANDS for case in GLAMM_CASES]
               + [(c, "--clip", "clip", case) for c in GLAMM_COMMANDS for case in CLIP_CASES]
               + [(c, "--sam", "sam", case) for c in GLAMM_COMMANDS for case in SAM_CASES])


@pytest.mark.parametrize("command,option,kind,case", MODEL_CASES)
def test_a_model_that_cannot_be_loaded_is_a_usage_error(command, option, kind, case, bad_models, toy_refer,
                                                         tmp_path, capsys):
    model = bad_models[kind][case]
    out = tmp_path / "out"
    argv = _argv(command, out, toy_refer) + [option, model]
    if option == "--model" and kind == "clip":
        argv += ["--threads", "1"]
    rc = main(argv)
    _assert_clean(rc, capsys.readouterr().err, command, model.split(":")[-1] if case != "bad seed" else model,
                  out)


#: every subcommand with an output folder, and the output-file options
OUTPUT_CASES = [(c, "--out") for c in ["reversal", "sink", "retention", "eval-grounding", "importance",
                                         "efficiency", "validate", "demo", "figures", "toy-data",
                                       "toy-train"]]
OUTPUT_CASES += [("select", "--save-overlay"), ("demo", "--work-dir"), ("reversal", "--cache-dir"),
                 ("sink", "--cache-dir"), ("explore", "--out")]


@pytest.mark.parametrize("how", ["chmod", "simulated"])
@pytest.mark.parametrize("command,option", OUTPUT_CASES)
def test_an_output_in_a_read_only_folder_is_refused_before_any_work(command, option, how, tmp_path, capsys,
                                                                    monkeypatch):
    locked = tmp_path / "read-only"
    locked.mkdir()
    locked.chmod(0o555)
    try:
        if how == "chmod" and os.access(locked, os.W_OK):
            pytest.skip("chmod does not stop this user from writing (root): see the 'simulated' variant")
        if how == "simulated":  # what a read-only folder looks like to a user that chmod stops
            real = os.access
            monkeypatch.setattr(os, "access", lambda p, mode, **kw: (
                False if Path(p).resolve() == locked.resolve() and mode & os.W_OK else real(p, mode, **kw)))
        target = locked / {"select": "overlay.png", "explore": "runs/page.html"}.get(command, "out")
        argv = [command, option, str(target)]
        if option != "--out" and command != "select":
            argv += ["--out", str(tmp_path / "out")]
        if command == "select":
            argv += ["--image", "x.png", "--budget", "4"]
        if command == "explore":  # a missing folder (runs/) under a read-only one
            (tmp_path / "x.png").write_bytes(b"")
            argv += ["--image", str(tmp_path / "x.png"), "--text", "the bowl"]
        if command in ("eval-grounding", "importance", "validate"):
            argv += ["--refer-dir", str(tmp_path)]
        rc = main(argv)
        err = capsys.readouterr().err
        _assert_clean(rc, err, command, f"folder {str(locked)!r} is not writable", tmp_path / "out")
        assert option in err and not target.exists()
    finally:
        locked.chmod(0o755)


def _integer_options(command: str) -> list[str]:
    """Every option of ``command`` whose values are integers (alone or in a comma-separated list)."""
    parser = build_parser(only=command)
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction)).choices[command]
    return [a.option_strings[0] for a in sub._actions
            if a.option_strings and a.help != argparse.SUPPRESS
            and (a.type is int or getattr(a.type, "__name__", "") in ("int", "int list"))]


NON_INTEGER_CASES = [(c, o) for c in all_commands() for o in _integer_options(c)]


@pytest.mark.parametrize("command,option", NON_INTEGER_CASES)
def test_a_non_integer_where_an_integer_is_expected_is_a_usage_error(command, option, tmp_path, capsys):
    out = tmp_path / "out"
    value = "576,1.5" if option == "--image-ids" else "1.5"
    assert main([command, option, value, "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert f"argument {option}: invalid int value: '1.5'" in err and err.rstrip().endswith("; see --help")
    assert "Traceback" not in err and not out.exists()


def test_non_integer_cases_cover_every_subcommand_with_integer_options():
    assert {c for c, _ in NON_INTEGER_CASES} == set(all_commands())  # --threads at least
    assert ("eval-grounding", "--image-ids") in NON_INTEGER_CASES  # budgets are Budgets: test_budget_flags.py


def test_figures_on_a_folder_without_results(tmp_path, capsys):
    empty = tmp_path / "results"
    empty.mkdir()
    out = tmp_path / "figures"
    assert main(["figures", "--results", str(empty), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and str(empty) in lines[0] and "no results" in lines[0], lines
    assert not out.exists()


def test_retention_skips_and_counts_an_image_that_is_not_an_image(toy_refer, tmp_path, capsys):
    refer = tmp_path / "refer"
    shutil.copytree(toy_refer, refer)
    broken = sorted((refer / "images").iterdir())[1]
    broken.write_text("not an image")
    out = tmp_path / "out"
    assert main(["retention", "--model", "tiny-random", "--refer-dir", str(refer), "--limit-images", "2",
                 "--budgets", "4", "--methods", "random", "--out", str(out)]) == 0
    config = json.loads((out / "config.json").read_text())
    assert [s["path"] for s in config["skipped"]] == [str(broken)]
    assert len(list((out / "images").glob("*.png"))) == 1
    assert "1 image(s) skipped as unreadable" in capsys.readouterr().out
    for f in (refer / "images").iterdir():  # none readable: an error, nothing written
        f.write_text("not an image")
    out2 = tmp_path / "out2"
    assert main(["retention", "--model", "tiny-random", "--refer-dir", str(refer), "--limit-images", "2",
                 "--budgets", "4", "--methods", "random", "--out", str(out2)]) == 2
    assert "no image could be read" in capsys.readouterr().err and not out2.exists()


def test_an_unknown_sam_name_is_refused_without_asking_an_unreachable_hub(monkeypatch):
    """Without the offline switch and without a hub that answers, ``--sam`` is looked up in the local
    cache only (the hub client would retry for about 30 s), and the error says where it looked."""
    import transformers

    from litelvlm.errors import LiteLVLMError
    from litelvlm.glamm import sam_preprocess

    calls = []
    real = transformers.SamImageProcessor.from_pretrained

    def spy(name, **kw):
        calls.append(kw)
        return real(name, **kw)

    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.setattr("litelvlm.clip.hf.hub_reachable", lambda timeout=3.0: False)
    monkeypatch.setattr(transformers.SamImageProcessor, "from_pretrained", spy)
    with pytest.raises(LiteLVLMError, match="not in the local Hugging Face cache"):
        sam_preprocess.sam_processor("no-such-org/no-such-sam")
    assert calls == [{"local_files_only": True}]
