"""The walk of a results tree (:mod:`analysis.common.runs.run_tree`) that ``figures`` and ``tables`` share:
every folder whose ``config.json`` records a run identity is a run, the root included; a run's ``parts/`` and
hidden staging folders are not; a ``config.json`` without an identity, or one that cannot be read, is skipped
with its reason."""

from __future__ import annotations

import json

import pytest

from analysis.common.runs.run_tree import find_runs, hidden
from litelvlm.errors import LiteLVLMError


def _config(folder, identity=True, text=None):
    folder.mkdir(parents=True, exist_ok=True)
    record = {"model": "tiny-random"}
    if identity:
        record["identity"] = {"study": "grounding", "family": "glamm", "model": "tiny-random",
                              "weights": "random"}
    (folder / "config.json").write_text(text if text is not None else json.dumps(record))


def test_runs_are_the_folders_whose_config_records_an_identity(tmp_path):
    _config(tmp_path)                                   # the root itself is a run
    _config(tmp_path / "glamm" / "grounding")
    _config(tmp_path / "glamm" / "grounding" / "parts")  # its resumable parts: not a run
    _config(tmp_path / ".staging" / "x")                 # a hidden staging folder: not a run
    _config(tmp_path / "old", identity=False)
    _config(tmp_path / "garbled", text="{")
    runs, skipped = find_runs(tmp_path)
    assert [r.folder for r in runs] == [tmp_path, tmp_path / "glamm" / "grounding"]
    assert runs[1].label == "glamm/tiny-random" and runs[1].identity["study"] == "grounding"
    why = dict(skipped)
    assert set(why) == {tmp_path / "old", tmp_path / "garbled"}
    assert "records no study" in why[tmp_path / "old"]
    assert "unreadable config.json" in why[tmp_path / "garbled"]
    assert hidden(("a", "parts")) and hidden((".x",)) and not hidden(("glamm", "grounding"))


def test_a_results_path_that_is_not_a_folder_is_refused(tmp_path):
    with pytest.raises(LiteLVLMError, match="is not a folder"):
        find_runs(tmp_path / "missing")
