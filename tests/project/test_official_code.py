"""The tests' access to the official code in ``../shared/official`` (``tests/official_code.py``)."""

from __future__ import annotations

import os

import pytest

from tests.official_code import REPOSITORIES, open_official


def _listing(path):
    """Every file under ``path`` with its size and modification time."""
    return sorted((str(p), p.stat().st_size, p.stat().st_mtime_ns) for p in path.rglob("*"))


def test_every_stored_repository_is_read_without_writing_there(official):
    before = _listing(official.root)
    for name in REPOSITORIES:
        assert (official.root / name).exists(), name
    for name in ("LiteLVLM.git", "UniPixel.git"):   # read through a git dir of our own, with or without refs
        assert b"" != official.show(name, "README.md")
    pyc = "model/llava/model/language_model/__pycache__/modeling_llama_fastv.cpython-310.pyc"
    assert official.show("LiteLVLM.git", pyc)[:4] == bytes.fromhex("6f0d0d0a")   # CPython 3.10's magic number
    sam2 = official.extract("UniPixel.git", "sam2")
    assert (sam2 / "sam2" / "sam2_video_predictor.py").is_file()
    assert official.extract("UniPixel.git", "sam2") == sam2                        # made once
    assert (official.tree("davis2017-evaluation") / "davis2017" / "metrics.py").is_file()
    assert (official.tree("VideoGLaMM") / "VideoGLaMM" / "eval_referdavis_metrics.py").is_file()
    assert _listing(official.root) == before


def test_skips_only_without_shared(tmp_path):
    with pytest.raises(pytest.skip.Exception, match="is absent"):
        open_official(tmp_path / "scratch", shared=tmp_path / "no-shared")
    (tmp_path / "shared").mkdir()
    with pytest.raises(pytest.fail.Exception, match="is here but"):
        open_official(tmp_path / "scratch", shared=tmp_path / "shared")
    (tmp_path / "shared" / "official").mkdir()
    assert open_official(tmp_path / "scratch",
                         shared=tmp_path / "shared").root == tmp_path / "shared" / "official"
    with pytest.raises(FileNotFoundError, match="sejong-rcv/LiteLVLM @5896153"):
        open_official(tmp_path / "scratch", shared=tmp_path / "shared").git_dir("LiteLVLM.git")
    assert not os.listdir(tmp_path / "shared" / "official")
