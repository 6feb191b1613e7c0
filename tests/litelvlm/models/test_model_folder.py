"""Model folders checked at load (``litelvlm.models.model_folder``), every family alike: a ``config.json``
that is not a JSON object or holds a key of the wrong type, or a folder without its tokenizer (or
image-processor) files, is one ``LiteLVLMError`` naming the folder and the key with its expected type, or the
missing files, before transformers, open_clip or torch read anything (no traceback, no token-count mismatch
later); through the CLI, one exit-2 line with nothing written.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from litelvlm.cli import main
from litelvlm.errors import LiteLVLMError
from litelvlm.models.model_folder import check_types, read_config, require_files

FAMILIES = ["glamm", "videoglamm", "unipixel", "qwen", "clip", "open_clip"]
#: family -> (the key made a string, what the error says it must be)
STRING_KEY = {"glamm": "hidden_size", "videoglamm": "vocab_size", "unipixel": "sam2_image_size",
              "qwen": "vision_config.depth", "clip": "vision_config.hidden_size",
              "open_clip": "model_cfg.vision_cfg.width"}
TOKENIZER_FILES = ("tokenizer.json", "tokenizer.model", "tokenizer_config.json", "vocab.json", "merges.txt",
                   "special_tokens_map.json", "added_tokens.json")


@pytest.fixture(scope="module")
def good_folders(tmp_path_factory, tiny_hf_clip_dir, tiny_open_clip_dir) -> dict[str, Path]:
    """A loadable folder of each family (the tiny random presets, as the loaders' tests write them)."""
    from litelvlm.glamm.checkpoint_writer import save_random_glamm
    from litelvlm.qwen.checkpoint import random_qwen_dir
    from litelvlm.unipixel.checkpoint import random_unipixel_dir
    from litelvlm.videoglamm.checkpoint import videoglamm_folder

    return {"glamm": save_random_glamm(tmp_path_factory.mktemp("glamm") / "glamm", "tiny", 0),
            "videoglamm": videoglamm_folder("videoglamm-tiny-random:0"),
            "unipixel": random_unipixel_dir("tiny", 0),
            "qwen": random_qwen_dir("tiny", 0), "clip": tiny_hf_clip_dir, "open_clip": tiny_open_clip_dir}


def _config_name(family: str) -> str:
    return "open_clip_config.json" if family == "open_clip" else "config.json"


def broken_folder(source: Path, family: str, case: str, root: Path) -> tuple[Path, list[str]]:
    """A copy of ``source`` with one defect of ``case``, and the texts its error must hold."""
    folder = root / f"{family} {case}"
    shutil.copytree(source, folder, ignore=shutil.ignore_patterns(".complete"))
    config = folder / _config_name(family)
    if case == "config a JSON list":
        config.write_text(json.dumps([1, 2, 3]))
        return folder, [str(folder), _config_name(family), "holds a list", "not a JSON object"]
    if case == "a size as a string":
        cfg = json.loads(config.read_text())
        *parents, last = STRING_KEY[family].split(".")
        node = cfg
        for p in parents:
            node = node[p]
        node[last] = str(node[last])
        config.write_text(json.dumps(cfg))
        return folder, [str(folder), f"key {STRING_KEY[family]!r} must be an integer, got a string"]
    assert case == "no tokenizer files"
    for name in TOKENIZER_FILES:
        (folder / name).unlink(missing_ok=True)
    return folder, [str(folder), "lacks the tokenizer file(s) tokenizer.json"]


def load(family: str, folder: Path):
    """The family's loader on ``folder``."""
    if family == "glamm":
        from litelvlm.glamm.checkpoint import load_glamm_checkpoint

        return load_glamm_checkpoint(folder)
    if family == "videoglamm":
        from litelvlm.videoglamm.checkpoint import load_videoglamm

        return load_videoglamm(str(folder))
    if family == "unipixel":
        from litelvlm.unipixel.checkpoint import load_unipixel

        return load_unipixel(str(folder))
    if family == "qwen":
        from litelvlm.qwen.checkpoint import load_qwen

        return load_qwen(str(folder))
    from litelvlm.clip import load_clip

    return load_clip(str(folder), "hf") if family == "clip" else load_clip(f"local-dir:{folder}", "open_clip")


LOADER_CASES = [(f, c) for f in FAMILIES
                for c in ("config a JSON list", "a size as a string", "no tokenizer files")
                # open_clip's tokenizer ships with it
                if not (f == "open_clip" and c == "no tokenizer files")]


@pytest.mark.odd_case("model folders", "config.json a JSON list, a size as a string, no tokenizer files "
                      "(every family)",
                      "load_glamm_checkpoint, load_videoglamm, load_unipixel, load_qwen, load_clip",
                      "LiteLVLMError naming the folder and the key with its expected type, or the missing "
                      "files")
@pytest.mark.parametrize("family,case", LOADER_CASES)
def test_a_broken_model_folder_is_refused_at_load(family, case, good_folders, tmp_path):
    folder, names = broken_folder(good_folders[family], family, case, tmp_path)
    with pytest.raises(LiteLVLMError) as e:
        load(family, folder)
    message = str(e.value)
    assert "\n" not in message and all(n in message for n in names), message


def test_qwen_and_unipixel_need_every_file_of_their_slow_tokenizer(good_folders, tmp_path):
    for family in ("qwen", "unipixel"):
        folder = tmp_path / family
        shutil.copytree(good_folders[family], folder)
        (folder / "tokenizer.json").unlink()
        (folder / "merges.txt").unlink()
        with pytest.raises(LiteLVLMError, match=r"lacks the tokenizer file\(s\) merges.txt \(or "
                           r"tokenizer.json\)"):
            load(family, folder)
        (folder / "preprocessor_config.json").unlink()
        shutil.copy(good_folders[family] / "tokenizer.json", folder)
        with pytest.raises(LiteLVLMError, match=r"lacks the image processor file\(s\) "
                           r"preprocessor_config.json"):
            load(family, folder)


def test_check_types_reads_json_types_strictly(tmp_path):
    schema = {"n": "int", "eps": "float", "flag": "bool", "ids": "int list", "opt": "int|null",
              "sub.k": "str"}
    check_types(
        {"n": 3, "eps": 1, "flag": False, "ids": [1, 2], "opt": None, "sub": {"k": "x"}, "extra": "y"},
                schema, "here")
    check_types({}, schema, "here")   # a key left out is the loader's to default or refuse
    for cfg, key, want in [({"n": True}, "n", "an integer, got true or false"),
                           ({"n": 2.5}, "n", "an integer, got a number"),
                           ({"eps": "1e-5"}, "eps", "a number, got a string"),
                           ({"ids": [1, "2"]}, "ids", "a list of integers, got a list"),
                           ({"opt": "1"}, "opt", "an integer or null, got a string"),
                           ({"sub": {"k": 1}}, "sub.k", "a string, got an integer")]:
        with pytest.raises(LiteLVLMError, match=f"^here: key '{key}' must be {want}"):
            check_types(cfg, schema, "here")
    (tmp_path / "config.json").write_text("{\"a\": ")
    with pytest.raises(LiteLVLMError, match="config.json could not be read"):
        read_config(tmp_path)
    with pytest.raises(LiteLVLMError, match="has no other.json"):
        read_config(tmp_path, "other.json")
    (tmp_path / "a").touch()
    require_files(tmp_path, "thing", [("b",), ("a",)])
    with pytest.raises(LiteLVLMError, match=r"lacks the thing file\(s\) c \(or b\)"):
        require_files(tmp_path, "thing", [("b",), ("a", "c")])


#: (command, family of its --model) for each family a command loads from a folder
CLI_CASES = [(c, f, case) for c, f in [("eval-grounding", "glamm"), ("eval-grounding", "unipixel"),
                                       ("eval-video", "videoglamm"), ("reversal", "clip")]
             for case in ("config a JSON list", "a size as a string", "no tokenizer files")]


@pytest.mark.odd_case("model folders", "a --model folder whose config.json is a list, holds a size as a "
                      "string, or lacks the tokenizer files", "eval-grounding, eval-video, reversal",
                      "one line naming the folder and the key or files; exit 2; --out not created")
@pytest.mark.parametrize("command,family,case", CLI_CASES)
def test_a_broken_model_folder_is_one_line_before_anything_is_written(command, family, case, good_folders,
                                                                       toy_refer, tmp_path, capsys):
    folder, names = broken_folder(good_folders[family], family, case, tmp_path)
    out = tmp_path / "out"
    argv = [command, "--model", str(folder), "--out", str(out)]
    if command != "eval-video":
        argv += ["--refer-dir", str(toy_refer)]
    assert main(argv) == 2
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.strip() and not line.startswith("WARNING")]
    assert "Traceback" not in err and len(lines) == 1 and lines[0].startswith(
        f"litelvlm {command}: error: "), err
    assert all(n in lines[0] for n in names[:2]), lines[0]
    assert not out.exists() or not any(out.iterdir()), sorted(out.rglob("*"))
