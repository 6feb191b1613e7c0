"""REFER refs files are unpickled with a restricted unpickler: a crafted file cannot run code."""

from __future__ import annotations

import os
import pickle
import shutil

import pytest

from litelvlm.cli import main
from litelvlm.data.refer import load_refs
from litelvlm.errors import LiteLVLMError


class _Payload:
    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_real_refs_load(coco128):
    refs = load_refs(coco128 / "refs(unc).p")
    assert len(refs) == 357 and isinstance(refs[0]["sentences"], list)


def test_code_carrying_and_truncated_files_are_refused(tmp_path):
    marker = tmp_path / "pwned"
    bad = tmp_path / "refs(unc).p"
    bad.write_bytes(pickle.dumps([_Payload(marker)], protocol=2))
    with pytest.raises(LiteLVLMError, match="built-in types"):
        load_refs(bad)
    assert not marker.exists()
    bad.write_bytes(pickle.dumps([{"ref_id": 1}], protocol=2)[:-5])
    with pytest.raises(LiteLVLMError, match="could not be loaded"):
        load_refs(bad)


@pytest.mark.parametrize("command", [["eval-grounding", "--out"], ["retention", "--data", "{d}", "--out"]])
def test_every_reader_refuses_a_crafted_file(coco128, tmp_path, capsys, command):
    d = tmp_path / "refer"
    shutil.copytree(coco128, d, ignore=shutil.ignore_patterns("images"))
    marker = tmp_path / "pwned"
    (d / "refs(unc).p").write_bytes(pickle.dumps([_Payload(marker)], protocol=2))
    argv = [a.replace("{d}", str(d)) for a in command] + [str(tmp_path / "out")]
    if command[0] == "eval-grounding":
        argv += ["--refer-dir", str(d), "--image-dir", str(coco128 / "images")]
    assert main(argv) == 2
    assert not marker.exists() and "built-in types" in capsys.readouterr().err
