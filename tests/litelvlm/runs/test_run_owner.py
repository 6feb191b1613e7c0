"""litelvlm.runs.run_owner: which command's run a folder holds (from its record, its config.json, a demo's
summary, a toy CLIP or a toy REFER folder), the refusal of another command's folder, and every kind of damaged
earlier result as one error naming the file."""

from __future__ import annotations

import errno
import json
import os
import re
from pathlib import Path

import pytest

from litelvlm.errors import LiteLVLMError
from litelvlm.runs import cache, io, run_owner
from litelvlm.runs.run_owner import MARKER, claim, file_digest, owner


def _identity(study: str) -> dict:
    return {"identity": {"study": study, "family": "clip", "model": "tiny336-random", "weights": "random"}}


#: a folder's files -> the command it holds
HELD = {
    "identity grounding": ({"config.json": _identity("grounding")}, "eval-grounding"),
    "identity video": ({"config.json": _identity("video")}, "eval-video"),
    "identity sink": ({"config.json": _identity("sink")}, "sink"),
    "command key": ({"config.json": {"command": "reversal", "args": {}}}, "reversal"),
    # efficiency's config.json: the whole command line under "command", no record (a committed results folder)
    "command line key": ({"config.json": {"command": "litelvlm efficiency --arch tiny --out x",
                                          "run": {"command": None}}}, "efficiency"),
    "provenance line": ({"config.json": {"run": {"command": "litelvlm -v validate --out x"}}}, "validate"),
    "demo summary": ({"demo_summary.json": {"scenes": 4}}, "demo"),
    "toy REFER": ({"refs(unc).p": "", "scenes.json": []}, "toy-data"),
    "toy CLIP": ({"config.json": {"model_type": "clip", "architectures": ["CLIPModel"]}}, "toy-train"),
    "record": ({MARKER: {"command": "figures", "files": {}, "direct": []}}, "figures"),
    "a user's folder": ({"notes.txt": "mine"}, None),
}


def _folder(tmp_path: Path, files: dict) -> Path:
    out = tmp_path / "out"
    out.mkdir()
    for name, content in files.items():
        (out / name).write_text(content if isinstance(content, str) else json.dumps(content))
    return out


@pytest.mark.parametrize("case", list(HELD))
def test_the_command_a_folder_holds(tmp_path, case):
    files, command = HELD[case]
    assert owner(_folder(tmp_path, files)) == command


def test_every_committed_results_folder_is_read_as_its_command_or_none():
    """The folders under ``results/`` (committed without their run records) are claimed by the command that
    wrote them, so a user re-running a README command there replaces them instead of being refused with a
    garbled name (efficiency's config.json holds its whole command line)."""
    from analysis.commands import COMMANDS as STUDIES
    from litelvlm.cli import COMMANDS

    results = Path(__file__).resolve().parents[3] / "results"
    folders = sorted(p.parent for p in results.glob("*/*/config.json"))
    assert folders
    for folder in folders:  # None: an early config naming no command (any command may write there)
        assert owner(folder) in {*COMMANDS, *STUDIES, None}, folder
    assert {owner(p.parent) for p in results.glob("efficiency/*/config.json")} == {"efficiency"}


@pytest.mark.odd_case("a run owns its --out", "an --out holding another command's run",
                      "every command writing --out",
                      "refused before anything loads (exit 2), one line naming that command, another --out "
                      "and --overwrite")
def test_another_commands_folder_is_refused_naming_it_and_the_way_out(tmp_path):
    out = _folder(tmp_path, {"config.json": _identity("importance")})
    with pytest.raises(LiteLVLMError) as e:
        claim(out, "eval-grounding")
    assert "`litelvlm importance`" in str(e.value) and "another --out" in str(
        e.value) and "--overwrite" in str(e.value)
    claim(out, "importance")   # its own command: accepted
    claim(out, "eval-grounding", overwrite=True)   # replaced whole when the new run commits
    assert run_owner.overwriting(out)


def test_a_record_naming_no_command_of_this_project_is_a_damaged_record(tmp_path):
    out = _folder(tmp_path, {MARKER: {"command": "no-such-command", "files": {}, "direct": []}})
    said = f"{out / MARKER} names a command this project does not have ('no-such-command'): an earlier result"
    with pytest.raises(LiteLVLMError, match=re.escape(said) + " is damaged"):
        claim(out, "figures", known={"figures", "reversal"})
    claim(out, "figures", overwrite=True, known={"figures"})   # replaced whole when the new run commits


def test_the_command_line_refuses_that_record_in_one_line(tmp_path, capsys):
    from litelvlm.cli import main
    from tests.fixtures.cli import one_error_line

    out = _folder(tmp_path, {MARKER: {"command": "no-such-command", "files": {}, "direct": []}})
    line = one_error_line(main(["toy-data", "--out", str(out)]), capsys.readouterr().err, "toy-data")
    assert "names a command this project does not have ('no-such-command')" in line and "damaged" in line
    assert "a run of `litelvlm no-such-command`" not in line


#: damaged earlier results: what is done to a folder holding a finished reversal run -> the file the error
#: names
def _garble(p: Path) -> None:
    p.write_bytes(b'{"half": ')


def _retype(field: str, value) -> callable:
    def damage(p: Path) -> None:
        p.write_text(json.dumps({**json.loads(p.read_text()), field: value}))
    return damage


def _to_folder(p: Path) -> None:
    p.unlink()
    p.mkdir()


def _dangling(p: Path) -> None:
    p.unlink()
    p.symlink_to(p.parent / "gone")


def _foreign(p: Path) -> None:
    p.write_bytes(b"PAR1 a table of something else")


DAMAGES = {
    "config.json garbled": ("config.json", _garble),
    "config.json a list": ("config.json", lambda p: p.write_text("[1, 2]")),
    "identity a string": ("config.json", _retype("identity", "reversal")),
    "args a list": ("config.json", _retype("args", ["--seed", "0"])),
    "paths a list": ("config.json", _retype("paths", ["a"])),
    "paths entry a number": ("config.json", _retype("paths", {"refer_dir": 3})),
    "run a string": ("config.json", _retype("run", "yesterday")),
    "config.json a folder": ("config.json", _to_folder),
    "config.json a broken link": ("config.json", _dangling),
    "config.json a link":
    ("config.json", lambda p: (p.rename(p.parent / "real.json"), p.symlink_to("real.json"))),
    "a foreign table": ("reversal.parquet", _foreign),
    "a truncated table": ("summary.csv", lambda p: p.write_bytes(p.read_bytes()[:10])),
    "a table replaced by a folder": ("summary.csv", _to_folder),
    "a table replaced by a link":
    ("summary.csv", lambda p: (p.unlink(), p.symlink_to(p.parent / "config.json"))),
    "the record garbled": (MARKER, _garble),
    "the record a folder": (MARKER, _to_folder),
    "the record without files": (MARKER, lambda p: p.write_text('{"command": "reversal", "files": [1]}')),
    "the journal garbled": (".litelvlm-commit.json", lambda p: p.write_text("{not json")),
}


def _finished_run(tmp_path: Path, record: bool = True) -> Path:
    """A folder as a finished reversal run leaves it (with its record)."""
    out = _folder(tmp_path,
                  {"config.json": {"command": "reversal", "args": {"seed": 0}, "run": None, **_identity(
        "reversal"), "paths": {"refer_dir": {"typed": "d", "absolute": "/d", "from_results": "../d"}}},
        "summary.csv": "layer,auroc\n2,0.5\n"})
    (out / "reversal.parquet").write_bytes(b"PAR1 reversal rows PAR1")
    if record:
        files = {n: {"sha256": file_digest(out / n), "size": (out / n).stat().st_size}
                 for n in ("config.json", "summary.csv", "reversal.parquet")}
        (out / MARKER).write_text(json.dumps({"command": "reversal", "files": files, "direct": ["parts"]}))
    return out


@pytest.mark.odd_case("damaged results", "an earlier result damaged: config.json garbled, of the wrong type "
                      "or with fields of the wrong type, a foreign or truncated table, a folder or a link "
                      "where a file was, a garbled run record or commit journal",
                      "every command writing --out",
                      "one line naming the file (exit 2) before anything loads; nothing rewritten")
@pytest.mark.parametrize("case", list(DAMAGES))
def test_every_damaged_earlier_result_is_named(tmp_path, case):
    name, damage = DAMAGES[case]
    # also a folder written before records
    for record in (True, False) if name == "config.json" else (True,):
        _refused(tmp_path / str(record), name, damage, record)


def _refused(tmp_path: Path, name: str, damage, record: bool) -> None:
    tmp_path.mkdir()
    out = _finished_run(tmp_path, record)
    if not os.path.lexists(out / name):
        (out / name).write_text("{}")
    damage(out / name)
    before = {p.name: p.read_bytes() for p in out.iterdir() if p.is_file() and not p.is_symlink()}
    with pytest.raises(LiteLVLMError) as e:
        claim(out, "reversal")
    assert str(out / name) in str(e.value) and "\n" not in str(e.value)
    assert {p.name: p.read_bytes() for p in out.iterdir() if p.is_file() and not p.is_symlink()} == before
    claim(out, "reversal", overwrite=True)   # the way out the message names


def test_an_intact_run_is_accepted_and_an_unreadable_file_is_named(tmp_path, monkeypatch):
    out = _finished_run(tmp_path)
    claim(out, "reversal")
    real = Path.read_bytes

    def denied(self):   # a permission error as a non-root user meets it (root reads every file)
        if self.name == "config.json":
            raise PermissionError(errno.EACCES, "Permission denied", str(self))
        return real(self)

    monkeypatch.setattr(Path, "read_bytes", denied)
    (out / MARKER).unlink()
    with pytest.raises(LiteLVLMError, match="config.json cannot be read .permission denied"):
        claim(out, "reversal")


@pytest.mark.odd_case("storage", "a full disk met by a writer that names no file, or while writing a random "
                      "model into the cache", "every command", "one line naming the file or the cache folder "
                      "(exit 2); nothing partial left")
def test_a_full_disk_is_named(tmp_path):
    def full(tmp):
        raise OSError(errno.ENOSPC, "No space left on device")

    with pytest.raises(OSError) as e, io.atomic_path(tmp_path / "table.csv") as tmp:
        full(tmp)
    assert e.value.filename == str(tmp_path / "table.csv") and not any(tmp_path.iterdir())
    root = tmp_path / "cache" / "model"
    with pytest.raises(LiteLVLMError, match=f"{root}.*No space left"):
        cache.write_once(root, full)
    assert not any((tmp_path / "cache").iterdir())
