"""litelvlm.transaction: staged writes reach the folder together at commit, or never; a commit a kill interrupted
is rolled forward; cleanup touches only the project's own names; a run reads its own staged writes."""

from __future__ import annotations

import json

import pytest

from litelvlm import transaction
from litelvlm.io import write_json, write_text
from litelvlm.transaction import JOURNAL, STAGE_PREFIX, TMP_SUFFIX, Transaction, current, pending, recover


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
    assert (tmp_path / "table.csv").read_text() == "new" and json.loads((tmp_path / "config.json").read_text())
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
    (tmp_path / JOURNAL).write_text("{not json")   # a journal never completed: no commit began
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
