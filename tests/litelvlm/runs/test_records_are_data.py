"""A run record, a commit journal or a leftover of this project's names is data, never a command: every path
it names must be a plain relative name inside the folder (no absolute path, no ``..``, no empty or ``.`` part,
no link leading out), or the record is refused as damaged in one line naming it, with nothing moved, read or
written outside the folder; with ``--overwrite`` the record is not followed and the folder is replaced whole.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from litelvlm.errors import LiteLVLMError
from litelvlm.runs.io import write_text
from litelvlm.runs.records import inside, plain_name
from litelvlm.runs.run_folder import RunFolder
from litelvlm.runs.run_owner import MARKER, check_results, claim, owner, release
from litelvlm.runs.transaction import JOURNAL, REPLACED_PREFIX, STAGE_PREFIX, recover

#: a name a tampered record holds -> why it is refused
BAD_NAMES = {
    "../victim_dir": "not a plain",
    "../victim.txt": "not a plain",
    "sub/../../victim.txt": "not a plain",
    "/tmp/absolute.txt": "not a plain",
    "": "not a file name",
    ".": "not a plain",
    "a//b": "not a plain",
    "link/victim.txt": "leads out of its folder",
    7: "not a file name",
}


#: (name, where the record holds it): JSON keys are strings, so a number is tried as a resumable folder only
CASES = [(n, w) for w in ("files", "direct") for n in BAD_NAMES if w == "direct" or isinstance(n, str)]


def _outside(tmp_path: Path) -> dict[str, bytes]:
    """The user's files beside the folder, which nothing may touch."""
    (tmp_path / "victim_dir").mkdir(exist_ok=True)
    (tmp_path / "victim_dir" / "precious.txt").write_text("the user's, outside --out")
    (tmp_path / "victim.txt").write_text("the user's file, outside --out")
    return _snapshot(tmp_path)


def _snapshot(tmp_path: Path) -> dict[str, bytes]:
    paths = [tmp_path / "victim.txt", tmp_path / "victim_dir" / "precious.txt"]
    return {p.relative_to(tmp_path).as_posix(): p.read_bytes() for p in paths if p.exists()}


def _tampered(tmp_path: Path, name, where: str) -> Path:
    """A folder holding a finished sink run whose record names ``name`` (as a result file or a resumable
    folder)."""
    out = tmp_path / "d"
    with RunFolder(out, command="sink", overwrite=False):
        write_text(out / "summary.csv", "sink's summary")
    if not (out / "link").exists():
        (out / "link").symlink_to(tmp_path / "victim_dir")
    record = json.loads((out / MARKER).read_text())
    if where == "files":
        record["files"][name] = {"sha256": "0" * 64, "size": 3}
    else:
        record["direct"].append(name)
    (out / MARKER).write_text(json.dumps(record))
    return out


@pytest.mark.odd_case("damaged results", "a run record naming a path outside --out (`..`, absolute, empty, a "
                      "link leading out) as a result file or a resumable folder", "every command writing "
                                                                                  "--out",
                      "one line naming the record as damaged (exit 2), nothing moved, read or written "
                      "outside; "
                      "--overwrite replaces the folder whole without following the record")
@pytest.mark.parametrize(("name", "where"), CASES, ids=[f"{n!r}-{w}" for n, w in CASES])
def test_a_record_naming_a_path_outside_is_refused_and_never_followed(tmp_path, name, where):
    if where == "direct" and name == "link/victim.txt":
        name = "link"   # a resumable folder is one entry: the link itself
    before = _outside(tmp_path)
    out = _tampered(tmp_path, name, where)
    for check in (owner, check_results, lambda o: claim(o, "sink"), lambda o: claim(o, "reversal")):
        with pytest.raises(LiteLVLMError) as e:
            check(out)
        assert str(out / MARKER) in str(e.value) and "damaged" in str(e.value), str(e.value)
        assert "victim" not in str(e.value).replace(repr(name), "")   # never blames a file outside
        release(out)
    assert _snapshot(tmp_path) == before
    with RunFolder(out, command="reversal", overwrite=True):   # --overwrite: replaced whole, not followed
        write_text(out / "reversal.parquet", "reversal's")
    release(out)
    assert _snapshot(tmp_path) == before
    assert owner(out) == "reversal" and not (out / "summary.csv").exists()


@pytest.mark.parametrize("name", [n for n in BAD_NAMES if n != 7])
def test_plain_name_refuses_what_leads_out(tmp_path, name):
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "link").symlink_to(tmp_path)
    with pytest.raises(LiteLVLMError, match=BAD_NAMES[name].split()[0]):
        plain_name(tmp_path / "d", name, tmp_path / "d" / MARKER)
    assert plain_name(tmp_path / "d", "parts/part-1.json", "r") == tmp_path / "d" / "parts" / "part-1.json"


def test_inside_accepts_a_link_itself_but_not_what_lies_through_it(tmp_path):
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "link").symlink_to(tmp_path)
    assert inside(tmp_path / "d", tmp_path / "d" / "link") == tmp_path / "d" / "link"
    for path in (tmp_path / "d" / "link" / "x", tmp_path / "x", tmp_path / "d" / ".."):
        with pytest.raises(LiteLVLMError, match="outside the folder"):
            inside(tmp_path / "d", path)


#: a tampered commit journal -> its content
BAD_JOURNALS = {
    "stage outside": {"stage": "../victim_dir", "files": [], "drop": []},
    "stage not ours": {"stage": "parts", "files": [], "drop": []},
    "replaced outside": {"stage": f"{STAGE_PREFIX}x", "replaced": "../victim_dir", "files": [], "drop": []},
    "file outside": {"stage": f"{STAGE_PREFIX}x", "files": ["../victim.txt"], "drop": []},
    "drop outside": {"stage": f"{STAGE_PREFIX}x", "files": [], "drop": ["../victim.txt"]},
    "drop absolute": {"stage": f"{STAGE_PREFIX}x", "files": [], "drop": ["/tmp/x"]},
    "files not a list": {"stage": f"{STAGE_PREFIX}x", "files": "a.csv"},
}


@pytest.mark.odd_case("damaged results", "a commit journal naming a folder or file outside --out, or not of "
                                         "this project", "every command writing --out",
                      "one line naming the journal as damaged (exit 2), nothing outside touched; --overwrite "
                      "removes the journal only")
@pytest.mark.parametrize("case", list(BAD_JOURNALS))
def test_a_journal_naming_a_path_outside_is_refused_and_never_followed(tmp_path, case):
    before = _outside(tmp_path)
    out = tmp_path / "d"
    out.mkdir()
    (out / f"{STAGE_PREFIX}x").mkdir()
    (out / JOURNAL).write_text(json.dumps(BAD_JOURNALS[case]))
    with pytest.raises(LiteLVLMError, match="damaged") as e:
        claim(out, "sink")
    assert str(out / JOURNAL) in str(e.value)
    release(out)
    assert _snapshot(tmp_path) == before and (out / JOURNAL).exists()
    recover(out, discard_damaged=True)
    assert _snapshot(tmp_path) == before and not (out / JOURNAL).exists()


@pytest.mark.parametrize("prefix", [REPLACED_PREFIX, STAGE_PREFIX])
def test_a_leftover_of_our_names_that_is_a_link_is_removed_not_followed(tmp_path, prefix):
    before = _outside(tmp_path)
    out = tmp_path / "d"
    out.mkdir()
    (out / f"{prefix}x").symlink_to(tmp_path / "victim_dir")
    recover(out)
    assert _snapshot(tmp_path) == before and not os.path.lexists(out / f"{prefix}x")
    assert sorted(os.listdir(out)) == []
