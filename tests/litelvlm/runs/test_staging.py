"""litelvlm.runs.staging: an open transaction is its staging folder, found by the path of a write; no registry
of open transactions lives in the process, and two folders open at once never see each other's writes."""

from __future__ import annotations

import contextvars
import os

from litelvlm.runs import transaction
from litelvlm.runs.io import remove_result, write_text
from litelvlm.runs.run_folder import RunFolder
from litelvlm.runs.staging import current
from litelvlm.runs.transaction import STAGE_PREFIX, Transaction


def test_the_module_holds_no_registry_of_open_transactions():
    mutable = [name for name, value in vars(transaction).items()
               if isinstance(value, (list, dict, set, contextvars.ContextVar)) and not name.startswith("__")]
    assert not mutable, f"litelvlm.runs.transaction holds {mutable}"


def test_two_folders_open_at_once_do_not_see_each_others_writes(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    for out in (a, b):
        out.mkdir()
        (out / "table.csv").write_text(f"{out.name}'s earlier table")
    with RunFolder(a, direct=()) as fa:
        try:
            with RunFolder(b, direct=()) as fb:
                write_text(a / "table.csv", "a's new table")
                write_text(b / "table.csv", "b's new table")
                write_text(a / "only-a.csv", "a")
                remove_result(b / "table.csv")
                assert fa.tx.staged == ["table.csv", "only-a.csv"] and fb.tx.staged == ["table.csv"]
                assert fa.tx.removed == [] and fb.tx.removed == ["table.csv"]
                assert current(a / "table.csv").read_text() == "a's new table"
                assert current(b / "table.csv").read_text() == "b's new table"
                assert (a / "table.csv").read_text() == "a's earlier table"   # staged, not in place
                raise KeyboardInterrupt   # b is stopped: a goes on
        except KeyboardInterrupt:
            pass
        write_text(a / "after-b.csv", "a")
        assert fa.tx.staged[-1] == "after-b.csv"
    assert (b / "table.csv").read_text() == "b's earlier table" and not (b / "only-a.csv").exists()
    assert (a / "table.csv").read_text() == "a's new table" and (a / "only-a.csv").exists()
    assert not list(a.glob(f"{STAGE_PREFIX}*")) and not list(b.glob(f"{STAGE_PREFIX}*"))


def test_a_write_of_another_process_goes_in_place(tmp_path):
    """The staging folder is this process's: a process forked from it (a worker, a shard) writes in place."""
    tx = Transaction(tmp_path).begin()
    try:
        pid = os.fork()
        if pid == 0:
            try:
                write_text(tmp_path / "child.csv", "in place")
            finally:
                os._exit(0)
        os.waitpid(pid, 0)
        write_text(tmp_path / "parent.csv", "staged")
        assert (tmp_path / "child.csv").read_text() == "in place" and not (tmp_path / "parent.csv").exists()
        assert tx.staged == ["parent.csv"]
    finally:
        tx.abort()
