"""A checkpoint folder's weight files, found in one place with one wording for every family's loader
(:func:`litelvlm.models.model_folder.weight_files`): shards by their index, else the single file; no weights
or a missing shard is one line naming the folder."""

from __future__ import annotations

import json

import pytest

from litelvlm.errors import LiteLVLMError
from litelvlm.glamm.checkpoint import _weight_files as glamm_weight_files
from litelvlm.models.model_folder import weight_files
from litelvlm.qwen.checkpoint import weight_files as qwen_weight_files


def test_the_shards_an_index_lists_before_a_single_file(tmp_path):
    (tmp_path / "model.safetensors").write_bytes(b"")
    assert weight_files(tmp_path) == [tmp_path / "model.safetensors"]
    (tmp_path / "a.safetensors").write_bytes(b"")
    (tmp_path / "model.safetensors.index.json").write_text(json.dumps({"weight_map": {"x": "a.safetensors"}}))
    assert weight_files(tmp_path) == [tmp_path / "a.safetensors"]
    (tmp_path / "b.bin").write_bytes(b"")
    (tmp_path / "pytorch_model.bin.index.json").write_text(json.dumps({"weight_map": {"x": "b.bin"}}))
    assert weight_files(tmp_path, ("bin", "safetensors")) == [tmp_path / "b.bin"]


def test_no_weights_and_a_missing_shard_are_one_line_in_every_familys_loader(tmp_path):
    lines = set()
    for find in (weight_files, qwen_weight_files, glamm_weight_files):
        with pytest.raises(LiteLVLMError) as e:
            find(tmp_path)
        lines.add(str(e.value).split(" (")[0])
    assert lines == {f"model folder {str(tmp_path)!r}: the folder holds no weights"}
    index = {"weight_map": {"x": "gone.safetensors"}}
    (tmp_path / "model.safetensors.index.json").write_text(json.dumps(index))
    with pytest.raises(LiteLVLMError, match="listed in .* are missing: .*gone.safetensors"):
        weight_files(tmp_path)
