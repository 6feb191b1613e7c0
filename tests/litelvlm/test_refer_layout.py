"""``litelvlm.refer_layout``: a REFER folder's files found in it or its ``<dataset>/``, and a folder without
them refused with the line ``load_refer`` gives, importing nothing heavy."""

from __future__ import annotations

import subprocess
import sys

import pytest

from litelvlm.errors import LiteLVLMError
from litelvlm.refer_layout import check_refer_folder, find_refer_file


def test_found_in_the_folder_or_its_dataset_subfolder(tmp_path, coco128):
    check_refer_folder(coco128)
    (tmp_path / "refcoco").mkdir()
    (tmp_path / "refcoco" / "refs(unc).p").write_bytes(b"")
    assert find_refer_file(tmp_path, "refs(unc).p", "refcoco") == tmp_path / "refcoco" / "refs(unc).p"
    check_refer_folder(tmp_path, instances=False)
    with pytest.raises(LiteLVLMError, match=r"'instances.json' not found in --refer-dir"):
        check_refer_folder(tmp_path)
    with pytest.raises(LiteLVLMError, match=r"'refs\(umd\).p' not found"):
        check_refer_folder(tmp_path, split_by="umd")


def test_it_imports_nothing_heavy():
    code = ("import sys, litelvlm.refer_layout; "
            "print(sorted(m for m in ('torch', 'numpy', 'PIL', 'pandas') if m in sys.modules))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.stdout.strip() == "[]", done.stderr
