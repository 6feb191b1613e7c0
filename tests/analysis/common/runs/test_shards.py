"""``analysis.common.runs.shards``: started without a launcher, one process is the whole run (every item its
own, the folder held); the shares of P processes cover every item once, in order within each."""

from __future__ import annotations

from analysis.common.runs.shards import Shards
from litelvlm.runs.run_folder import RunFolder


def test_one_process_is_the_single_run(tmp_path):
    s = Shards("cpu")
    assert (s.rank, s.world, s.is_main, s.label()) == (0, 1, True, "process 0/1")
    assert s.share(["a", "b", "c"]) == ["a", "b", "c"] and s.device("cpu") == "cpu"
    assert isinstance(s.folder(tmp_path / "out"), RunFolder)
    with s.loading():
        s.wait()


def test_the_shares_of_p_processes_cover_every_item_once():
    items = list(range(7))
    shares = []
    for rank in range(3):
        s = Shards("cpu")
        s.state = type("State", (),
                       {"process_index": rank, "num_processes": 3, "is_main_process": rank == 0})()
        shares.append(s.share(items))
    assert shares == [[0, 3, 6], [1, 4], [2, 5]]
