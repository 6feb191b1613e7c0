"""RunFolder with ``--overwrite``: the earlier run (another command's) goes only when the new run commits; a
run that fails puts it back exactly, even where the new run wrote parts of the same names; the record names
the new command, and no lock file is left."""

from __future__ import annotations

import json

import pytest

from litelvlm.errors import LiteLVLMError
from litelvlm.runs.io import write_json, write_text
from litelvlm.runs.run_folder import LOCK_NAME, RunFolder
from litelvlm.runs.run_owner import MARKER


def _earlier(tmp_path):
    out = tmp_path / "out"
    (out / "parts").mkdir(parents=True)
    (out / "parts" / "part-1.json").write_text("the earlier run's part")
    (out / "config.json").write_text(json.dumps({"identity": {"study": "importance", "family": "glamm"}}))
    (out / "importance.parquet").write_text("the earlier run's table")
    return out


@pytest.mark.parametrize("fails", [False, True])
def test_overwrite_replaces_the_earlier_run_only_when_the_new_one_commits(tmp_path, fails):
    out = _earlier(tmp_path)
    before = {p.relative_to(out).as_posix(): p.read_bytes() for p in out.rglob("*") if p.is_file()}
    with pytest.raises(LiteLVLMError) if fails else _nothing():
        with RunFolder(out, command="eval-grounding", overwrite=True):
            write_text(out / "parts" / "part-1.json", "the new run's part")   # the same name, in place
            write_json(out / "config.json", {"command": "eval-grounding"})
            write_text(out / "summary.csv", "new")
            if fails:
                raise LiteLVLMError("a bad option met inside the run")
    after = {p.relative_to(out).as_posix(): p.read_bytes() for p in out.rglob("*") if p.is_file()}
    if fails:
        assert after == before
        return
    assert sorted(after) == sorted([MARKER, "config.json", "parts/part-1.json", "summary.csv"])
    assert after["parts/part-1.json"] == b"the new run's part" and not (out / LOCK_NAME).exists()
    assert json.loads(after[MARKER])["command"] == "eval-grounding"


class _nothing:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False
