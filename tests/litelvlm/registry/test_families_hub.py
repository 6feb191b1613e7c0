"""A released checkpoint's hub id (the ids the cards list, e.g. ``MBZUAI/GLaMM-RefSeg``, which ``--help``
names) is read as its family's model and downloaded with huggingface_hub when it loads; offline, one line
names the download command and how to pass the folder (issue #67, item 8). No network here: the online path is
mocked."""

from __future__ import annotations

import pytest

from litelvlm.cli import main
from litelvlm.errors import LiteLVLMError
from litelvlm.models.family_card import Lazy
from litelvlm.registry import families
from litelvlm.registry.resolved_model import ResolvedModel
from tests.end_to_end.test_startup import _run
from tests.fixtures.model_folders import fake_family_folder


def test_every_hub_id_names_its_family():
    for card in families.cards():
        for repo_id in card.hub_ids:
            assert families.family_of(repo_id) == card.name
    assert "MBZUAI/GLaMM-RefSeg" in families.card("glamm").hub_ids


def test_offline_a_hub_id_is_one_line_naming_the_download_command(monkeypatch, tmp_path, capsys, coco128):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))   # no cached snapshot
    with pytest.raises(LiteLVLMError) as e:
        families.hub_folder("MBZUAI/GLaMM-RefSeg")
    text = str(e.value)
    assert "huggingface-cli download MBZUAI/GLaMM-RefSeg --local-dir DIR" in text and "--model DIR" in text
    assert "HF_HUB_OFFLINE=1" in text
    assert main(["eval-grounding", "--model", "MBZUAI/GLaMM-RefSeg", "--refer-dir", str(coco128), "--out",
                 str(tmp_path / "out"), "--limit-images", "1"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "huggingface-cli download MBZUAI/GLaMM-RefSeg" in err[0]
    assert not (tmp_path / "out").exists()


def test_online_a_hub_id_is_downloaded_and_loaded_from_its_folder(monkeypatch, tmp_path):
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    asked = []

    def fake_download(repo_id, local_files_only=False):
        asked.append((repo_id, local_files_only))
        return str(fake_family_folder(tmp_path / "snapshot", "unipixel"))   # config.json and weights

    real_get = Lazy.get
    fakes = {Lazy("huggingface_hub", "snapshot_download"): fake_download,
             Lazy("litelvlm.clip.hf", "hub_reachable"): lambda: True}
    monkeypatch.setattr(Lazy, "get", lambda self: fakes.get(self) or real_get(self))
    assert families.hub_folder("PolyU-ChenLab/UniPixel-3B") == str(tmp_path / "snapshot")
    assert asked == [("PolyU-ChenLab/UniPixel-3B", False)]
    loaded = []
    monkeypatch.setattr(ResolvedModel, "pipeline_class", lambda self: type("F", (), {
        "from_model_string": staticmethod(lambda spec, **o: loaded.append((self.family, str(spec))))}))
    families.load_pipeline("PolyU-ChenLab/UniPixel-3B")
    assert loaded == [("unipixel", str(tmp_path / "snapshot"))]


def test_a_model_string_that_is_no_hub_id_is_left_alone():
    assert families.hub_folder("tiny-random:0") is None and families.hub_folder("someone/some-clip") is None


def test_offline_the_refusal_comes_before_anything_loads(monkeypatch, tmp_path, coco128):
    """``HF_HUB_OFFLINE=1`` and no cached snapshot: refused by the study's light checks (no torch)."""
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    result = _run(["eval-grounding", "--model", "MBZUAI/GLaMM-RefSeg", "--refer-dir", str(coco128), "--out",
                   str(tmp_path / "out")])
    assert result == {"rc": 2, "heavy": []}
    with pytest.raises(LiteLVLMError, match="huggingface-cli download MBZUAI/GLaMM-RefSeg"):
        families.check_hub_model("MBZUAI/GLaMM-RefSeg")
