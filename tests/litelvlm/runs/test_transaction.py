"""litelvlm.runs.transaction: staged writes reach the folder together at commit, or never; a commit a kill
interrupted is rolled forward; cleanup touches only the project's own names; a run reads its own staged
writes."""

from __future__ import annotations

import errno
import json
import os

import pytest

from litelvlm.errors import LiteLVLMError
from litelvlm.runs import transaction
from litelvlm.runs.io import write_json, write_text
from litelvlm.runs.staging import current
from litelvlm.runs.transaction import (
    JOURNAL,
    STAGE_PREFIX,
    TMP_SUFFIX,
    Transaction,
    pending,
    recover,
)


def test_staged_writes_reach_the_folder_together_at_commit(tmp_path):
    (tmp_path / "table.csv").write_text("old")
    tx = Transaction(tmp_path, direct=("parts",)).begin()
    try:
        write_text(tmp_path / "table.csv", "new")
        write_json(tmp_path / "config.json", {"run": 2})
        write_text(tmp_path / "parts" / "part-1.json", "{}")   # direct: in place at once
        assert (tmp_path / "table.csv").read_text() == "old" and not (tmp_path / "config.json").exists()
        assert (tmp_path / "parts" / "part-1.json").exists()
        assert current(tmp_path / "table.csv").read_text() == "new"   # the run reads its own writes
        assert tx.written == [tmp_path / "parts" / "part-1.json"]
    finally:
        assert tx.commit() == ["table.csv", "config.json"]
    assert (tmp_path / "table.csv").read_text() == "new" and json.loads(
        (tmp_path / "config.json").read_text())
    assert not list(tmp_path.glob(f"{STAGE_PREFIX}*")) and not pending(tmp_path)


def test_an_aborted_transaction_leaves_the_folder_as_it_was(tmp_path):
    (tmp_path / "table.csv").write_text("old")
    tx = Transaction(tmp_path).begin()
    write_text(tmp_path / "table.csv", "new")
    tx.abort()
    assert (tmp_path / "table.csv").read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["table.csv"]
    write_text(tmp_path / "after.txt", "x")   # closed: writes go in place again
    assert (tmp_path / "after.txt").read_text() == "x"


@pytest.mark.parametrize("moved", [0, 1])
def test_a_commit_killed_during_its_moves_is_rolled_forward(tmp_path, monkeypatch, moved):
    real, calls = transaction.replace, []

    class Killed(BaseException):
        pass

    def dying(src, dst):
        calls.append(dst)
        if len(calls) > 1 + moved:   # the journal, then ``moved`` files, then the kill
            raise Killed()
        real(src, dst)

    tx = Transaction(tmp_path).begin()
    write_text(tmp_path / "a.csv", "A")
    write_text(tmp_path / "b.csv", "B")
    monkeypatch.setattr(transaction, "replace", dying)
    with pytest.raises(Killed):
        tx.commit()
    monkeypatch.setattr(transaction, "replace", real)
    assert pending(tmp_path)
    recover(tmp_path)
    assert (tmp_path / "a.csv").read_text() == "A" and (tmp_path / "b.csv").read_text() == "B"
    assert not pending(tmp_path) and not list(tmp_path.glob(f"{STAGE_PREFIX}*"))


def test_recover_removes_only_the_projects_own_leftovers(tmp_path):
    ours = [tmp_path / f".a.csv.x{TMP_SUFFIX}", tmp_path / "sub" / f".b.parquet.y{TMP_SUFFIX}",
            tmp_path / f"{STAGE_PREFIX}abc" / "c.csv"]
    theirs = [tmp_path / ".draft.tmp", tmp_path / "sub" / ".scratch.tmp", tmp_path / "notes.litelvlm-tmp.md"]
    for p in ours + theirs:
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text("x")
    recover(tmp_path)
    assert not any(p.exists() for p in ours) and all(p.exists() for p in theirs)
    assert not pending(tmp_path)


def test_the_innermost_open_transaction_takes_a_write(tmp_path):
    outer = Transaction(tmp_path).begin()
    (tmp_path / "sub").mkdir()
    inner = Transaction(tmp_path / "sub").begin()
    write_text(tmp_path / "sub" / "x.csv", "inner")
    write_text(tmp_path / "y.csv", "outer")
    assert inner.staged == ["x.csv"] and outer.staged == ["y.csv"]
    inner.commit()
    outer.commit()
    assert (tmp_path / "sub" / "x.csv").read_text() == "inner" and (tmp_path / "y.csv").read_text() == "outer"


def _two_tables(tmp_path) -> Transaction:
    """A folder holding an earlier run (a.csv, b.csv) and an open transaction staging both anew."""
    (tmp_path / "a.csv").write_text("old A")
    (tmp_path / "b.csv").write_text("old B")
    tx = Transaction(tmp_path).begin()
    write_text(tmp_path / "a.csv", "new A")
    write_text(tmp_path / "b.csv", "new B")
    return tx


def _leftovers(folder) -> list[str]:
    return [p.name for p in folder.iterdir()
            if p.name.startswith((STAGE_PREFIX, JOURNAL, ".litelvlm-replaced"))]


@pytest.mark.odd_case("damaged results", "a folder (or a link) where a result file of the commit goes",
                      "every command that writes results",
                      "one line naming it (exit 2), checked before the first file moves: the earlier run as "
                      "it was")
@pytest.mark.parametrize("kind", ["folder", "link"])
def test_a_commit_checks_every_target_before_the_first_move(tmp_path, kind):
    tx = _two_tables(tmp_path)
    (tmp_path / "b.csv").unlink()
    if kind == "folder":
        (tmp_path / "b.csv").mkdir()
    else:
        (tmp_path / "b.csv").symlink_to(tmp_path / "elsewhere.csv")
    with pytest.raises(LiteLVLMError, match=r"b\.csv.*nothing was changed"):
        tx.commit()
    # not moved: the first target was fine, the second not
    assert (tmp_path / "a.csv").read_text() == "old A"
    assert not _leftovers(tmp_path) and not pending(tmp_path)


@pytest.mark.odd_case("faults", "a move of the commit fails part-way (after the first file moved)",
                      "every command that writes results",
                      "rolled back: the earlier run exactly as it was, no journal or staging folder left")
def test_a_commit_that_fails_part_way_is_rolled_back(tmp_path, monkeypatch):
    real, calls = transaction.replace, []

    def failing(src, dst):
        calls.append(dst)
        if str(dst).endswith("b.csv") and JOURNAL not in str(src):   # b's new file cannot reach its place
            raise PermissionError(errno.EACCES, "Permission denied", str(dst))
        real(src, dst)

    tx = _two_tables(tmp_path)
    monkeypatch.setattr(transaction, "replace", failing)
    with pytest.raises(PermissionError):
        tx.commit()
    assert any(str(d).endswith("a.csv") for d in calls)   # a.csv had moved when b.csv failed
    assert (tmp_path / "a.csv").read_text() == "old A" and (tmp_path / "b.csv").read_text() == "old B"
    assert not _leftovers(tmp_path) and not pending(tmp_path)


@pytest.mark.odd_case("damaged results", "a commit journal that cannot be read (garbled, a folder)",
                      "every command that writes results", "one line naming it (exit 2); --overwrite removes "
                      "it")
@pytest.mark.parametrize("kind", ["garbled", "folder"])
def test_an_unreadable_journal_is_named_not_guessed(tmp_path, kind):
    (tmp_path / "a.csv").write_text("old A")
    (tmp_path / JOURNAL).mkdir() if kind == "folder" else (tmp_path / JOURNAL).write_text("{not json")
    with pytest.raises(LiteLVLMError, match=JOURNAL):
        recover(tmp_path)
    assert os.path.lexists(tmp_path / JOURNAL)
    recover(tmp_path, discard_damaged=True)
    assert not os.path.lexists(tmp_path / JOURNAL) and (tmp_path / "a.csv").read_text() == "old A"


@pytest.mark.parametrize("outcome", ["commit", "abort", "kill"])
def test_an_earlier_run_replaced_whole_goes_only_with_the_commit(tmp_path, outcome):
    (tmp_path / "reversal.parquet").write_text("reversal's")
    (tmp_path / "parts").mkdir()
    (tmp_path / "parts" / "part-1.json").write_text("{}")
    tx = Transaction(tmp_path, direct=("parts",)).begin()
    tx.replace_earlier(["reversal.parquet", "parts"])
    write_text(tmp_path / "summary.csv", "sink's")
    write_text(tmp_path / "parts" / "part-9.json", "{}")   # the new run's part, in place
    if outcome == "commit":
        tx.commit()
        assert sorted(p.name for p in tmp_path.iterdir()) == ["parts", "summary.csv"]
        assert [p.name for p in (tmp_path / "parts").iterdir()] == ["part-9.json"]
        return
    tx.abort() if outcome == "abort" else (tx.forget(), recover(tmp_path))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["parts", "reversal.parquet"]
    assert [p.name for p in (tmp_path / "parts").iterdir()] == ["part-1.json"]
