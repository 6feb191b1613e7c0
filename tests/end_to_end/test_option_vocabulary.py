"""One vocabulary of options: the same idea has the same flag, default rule and meaning in every
subcommand (``--refer-dir``, ``--image-dir`` = ``<refer-dir>/images``, ``--limit-images`` /
``--limit-sentences``); old flags stay as hidden aliases that warn once; older results folders
whose config.json uses the old names still resume."""

from __future__ import annotations

import argparse
import json

import pytest

from litelvlm.cli import all_commands, build_parser, main

#: the meaning the old ``--limit`` had in each subcommand (kept as a hidden alias of that option)
OLD_LIMIT = {"reversal": "limit_sentences", "sink": "limit_sentences", "retention": "limit_images",
             "eval-grounding": "limit_images", "importance": "limit_images"}
#: one concept, one flag: field name -> the flag every subcommand uses for it
CANONICAL = {"refer_dir": "--refer-dir", "image_dir": "--image-dir", "limit_images": "--limit-images",
             "limit_sentences": "--limit-sentences", "out": "--out", "model": "--model", "seed": "--seed",
             "device": "--device", "dtype": "--dtype", "methods": "--methods", "budgets": "--budgets"}


def subparser(name: str) -> argparse.ArgumentParser:
    parser = build_parser(only=name)
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return sub.choices[name]


def options(name: str) -> dict[str, argparse.Action]:
    """Visible flag -> action of a subcommand (hidden aliases left out)."""
    return {flag: a for a in subparser(name)._actions for flag in a.option_strings
            if flag.startswith("--") and a.help is not argparse.SUPPRESS}


def hidden(name: str) -> dict[str, argparse.Action]:
    return {flag: a for a in subparser(name)._actions for flag in a.option_strings
            if a.help is argparse.SUPPRESS}


COMMANDS = sorted(all_commands())


@pytest.mark.parametrize("name", COMMANDS)
def test_shared_options_have_one_name(name):
    """Every field of a shared concept is reached by its one flag; the old names are not shown."""
    opts = options(name)
    for flag, action in opts.items():
        if action.dest in CANONICAL:
            assert flag == CANONICAL[action.dest], f"{name}: {action.dest} is {flag}"
    assert "--limit" not in opts and "--data" not in opts, f"{name} still shows an ambiguous option"
    assert len({a.dest for a in opts.values()}) == len(set(map(id, opts.values())))  # one flag per field


@pytest.mark.parametrize("name", COMMANDS)
def test_image_dir_defaults_to_refer_dir_images(name):
    opts = options(name)
    if "--image-dir" not in opts:
        return
    action = opts["--image-dir"]
    assert "--refer-dir" in opts, f"{name}: --image-dir without --refer-dir"
    assert action.default is None and "<refer-dir>/images" in action.help, (name, action.help)


@pytest.mark.parametrize("name", COMMANDS)
def test_limits_say_what_they_count(name):
    opts = options(name)
    for flag, unit in (("--limit-images", "images"), ("--limit-sentences", "sentences")):
        if flag in opts:
            assert f"first N {unit}" in opts[flag].help, (name, opts[flag].help)
            assert opts[flag].type("3") == 3
            with pytest.raises(argparse.ArgumentTypeError):  # the parse-time check (minimum=1) stays
                opts[flag].type("0")
    assert not ({"--limit-images", "--limit-sentences"} <= set(opts)), name


@pytest.mark.parametrize("name", COMMANDS)
def test_budget_is_a_count_everywhere(name):
    """``--budget``/``--budgets`` count visual tokens (``--budget`` is a :class:`~litelvlm.budget.Budget`: a
    count, or ``all``); the demo's share has its own name."""
    from litelvlm.budget import Budget

    opts = options(name)
    if "--budget" in opts:
        assert opts["--budget"].type("64") == Budget(64) and opts["--budget"].type("all") is Budget.ALL, name
    if "--budgets" in opts:  # Budgets, K >= 1 each (tests/end_to_end/test_budget_flags.py)
        assert all(isinstance(b, Budget) and b.count(10_000) > 0 for b in opts["--budgets"].default
                   or []), name
    if "--budget-share" in opts:
        assert "share" in opts["--budget-share"].help and hidden(name)["--budget"].dest == "budget_share"


def test_every_old_limit_is_an_alias_with_its_old_meaning():
    for name in COMMANDS:
        alias = hidden(name).get("--limit")
        if name not in OLD_LIMIT:
            assert alias is None, name
            continue
        assert alias is not None and alias.dest == OLD_LIMIT[name], name
        assert alias.default is argparse.SUPPRESS  # never overrides the option's own default
    assert hidden("retention")["--data"].dest == "refer_dir"


@pytest.mark.parametrize("name,new", sorted(OLD_LIMIT.items()))
def test_old_limit_parses_like_the_new_flag_and_warns_once(name, new, capsys):
    base = [name, "--out", "o", "--refer-dir", "d"]
    parser = build_parser(only=name)
    flag = "--" + new.replace("_", "-")
    ns_new = parser.parse_args([*base, flag, "5"])
    assert capsys.readouterr().err == ""
    ns_old = build_parser(only=name).parse_args([*base, "--limit", "4", "--limit", "5"])
    err = capsys.readouterr().err
    assert err.count("warning: --limit is deprecated") == 1 and flag in err
    assert getattr(ns_old, new) == getattr(ns_new, new) == 5
    assert not hasattr(ns_old, "limit")


def test_old_flags_keep_their_parse_time_checks(capsys, tmp_path):
    assert main(["reversal", "--out", str(tmp_path / "o"), "--limit", "-40"]) == 2
    assert "argument --limit: must be >= 1" in capsys.readouterr().err
    assert main(["retention", "--out", str(tmp_path / "o"), "--limit-images", "0"]) == 2
    assert "argument --limit-images: must be >= 1" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()


def test_retention_data_is_refer_dir(capsys):
    ns = build_parser(only="retention").parse_args(["retention", "--out", "o", "--data", "D"])
    assert ns.refer_dir == "D" and ns.limit_images == 2 and ns.image_dir is None
    assert "--data is deprecated; use --refer-dir" in capsys.readouterr().err


@pytest.mark.parametrize("new_key,config", [
    ("limit_images", {"seed": 0, "refer_dir": "r"}),
    ("limit_sentences", {"seed": 0, "refer_dir": "r"}),
])
def test_results_folders_with_old_option_names_still_resume(tmp_path, new_key, config):
    """A config.json written before the renames (``limit``, ``data``) matches a run with the same options."""
    from litelvlm.errors import LiteLVLMError
    from litelvlm.runs.resume import check_config

    (tmp_path / "config.json").write_text(json.dumps({"seed": 0, "limit": 3, "data": "r"}))
    assert check_config(tmp_path, {**config, new_key: 3})[new_key] == 3
    with pytest.raises(LiteLVLMError, match=f"--{new_key.replace('_', '-')}"):
        check_config(tmp_path, {**config, new_key: 4})
    assert check_config(tmp_path, {**config, new_key: 4}, growable={new_key: lambda o, n: n >= o})


def test_sink_ablation_runs_on_refer_dir_images_by_default(tmp_path, tiny_hf_clip_dir, capsys):
    """Without --image-dir the ablation runs on <refer-dir>/images; with --expressions (no images)
    the summary line and config.json say it was skipped and why."""
    from litelvlm.data.fixtures import write_tiny_refer

    refer = write_tiny_refer(tmp_path / "r")
    common = ["sink", "--model", str(tiny_hf_clip_dir), "--n-boot", "10", "--examples", "0"]
    assert main([*common, "--refer-dir", str(refer), "--out", str(tmp_path / "a"),
                 "--cache-dir", str(tmp_path / "cache")]) == 0
    assert "ablation done" in capsys.readouterr().out
    assert (tmp_path / "a" / "ablation.parquet").exists()
    expr = tmp_path / "e.json"
    expr.write_text(json.dumps({"items": [{"text": "a dog"}, {"text": "the cat"}]}))
    assert main([*common, "--expressions", str(expr), "--out", str(tmp_path / "b")]) == 0
    out = capsys.readouterr().out
    assert "ablation skipped: --expressions holds texts only" in out
    cfg = json.loads((tmp_path / "b" / "config.json").read_text())
    assert cfg["counts"]["ablation_skipped"].startswith("skipped: --expressions")
    assert not (tmp_path / "b" / "ablation.parquet").exists()
