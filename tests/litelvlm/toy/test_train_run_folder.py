"""``toy-data`` and ``toy-train`` write their results through :class:`litelvlm.runs.run_folder.RunFolder`,
like every command: staged and committed together (atomic), recorded as their command's run (owned), refusing
a folder that holds another command's run, and holding the folder's lock while they write."""

from __future__ import annotations

import json

import pytest

from litelvlm.errors import LiteLVLMError
from litelvlm.runs.run_owner import MARKER, file_digest, owner
from litelvlm.toy.options import ToyTrainArgs

TINY_TRAIN = dict(steps=1, batch_size=4, hard_negatives=1, train_scenes=4, eval_scenes=4, final_eval_scenes=4,
                  eval_every=1, image_size=56, patch_size=28, vision_width=32, vision_layers=1,
                  vision_heads=4, text_width=32, text_layers=1, embed_dim=16, threads=1)


def test_toy_data_commits_its_run_record_through_run_folder(tmp_path, monkeypatch):
    import litelvlm.runs.run_folder as run_folder
    from litelvlm.toy.refer_layout import write_refer

    entered = []
    real_enter = run_folder.RunFolder.__enter__

    def enter(self):
        entered.append((self.out, self.command))
        return real_enter(self)

    monkeypatch.setattr(run_folder.RunFolder, "__enter__", enter)
    out = write_refer(tmp_path / "set", 1, size=64)
    assert entered == [(tmp_path / "set", "toy-data")]
    record = json.loads((out / MARKER).read_text())
    assert record["command"] == "toy-data" and owner(out) == "toy-data"
    assert {"instances.json", "refs(unc).p", "scenes.json", "images/COCO_train2014_000000000001.png"} \
        == set(record["files"])
    assert not (out / ".lock").exists() and not [p for p in tmp_path.iterdir() if p.name.startswith(".")]


@pytest.mark.odd_case("a run owns its --out", "toy-train called from Python on a folder holding another "
                      "command's run", "toy-train",
                      "refused before training, naming that command; the folder untouched")
def test_toy_train_refuses_another_commands_folder_from_python(tmp_path):
    from litelvlm.toy.train import train

    (tmp_path / "b").mkdir()
    (tmp_path / "b" / MARKER).write_text(json.dumps({"command": "reversal", "files": {}, "direct": []}))
    with pytest.raises(LiteLVLMError, match="litelvlm reversal"):
        train(ToyTrainArgs(out=str(tmp_path / "b"), **TINY_TRAIN))
    assert sorted(p.name for p in tmp_path.rglob("*")) == [MARKER, "b"]


def test_toy_data_overwrite_replaces_another_commands_run_whole_and_records_its_own(tmp_path):
    from litelvlm.toy.refer_layout import write_refer

    out = tmp_path / "a"
    out.mkdir()
    (out / "summary.csv").write_text("x")
    entry = {"sha256": file_digest(out / "summary.csv"), "size": 1}
    record = {"command": "reversal", "files": {"summary.csv": entry}, "direct": []}
    (out / MARKER).write_text(json.dumps(record))
    write_refer(out, 1, size=64, overwrite=True)
    assert not (out / "summary.csv").exists()
    assert json.loads((out / MARKER).read_text())["command"] == "toy-data"


@pytest.mark.slow
def test_toy_train_commits_its_run_record_through_run_folder(tmp_path):
    """(Slow: a training step and the final evaluation.)"""
    from litelvlm.toy.train import train

    train(ToyTrainArgs(out=str(tmp_path / "m"), **TINY_TRAIN))
    out = tmp_path / "m"
    record = json.loads((out / MARKER).read_text())
    assert record["command"] == "toy-train" and "model.safetensors" in record["files"]
    assert owner(out) == "toy-train" and not (out / ".lock").exists()
