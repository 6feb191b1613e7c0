"""Another run's folder that a command reads (``--compare-to``) is settled before it is read: what a killed
``--overwrite`` run left there is put back, in one line, so the command reads that folder's last finished run.
"""

from __future__ import annotations

import argparse
import logging

from litelvlm.cli import check_common_options
from litelvlm.runs.io import write_text
from litelvlm.runs.recovery import leftovers
from litelvlm.runs.run_folder import RunFolder
from litelvlm.runs.transaction import REPLACED_PREFIX


def test_a_compare_to_folder_a_killed_run_left_half_replaced_is_put_back_first(tmp_path, caplog):
    other = tmp_path / "other"
    with RunFolder(other, command="validate", direct=(), overwrite=False):
        write_text(other / "reference.safetensors", "the earlier run's reference")
    aside = other / f"{REPLACED_PREFIX}x"   # what a SIGKILLed --overwrite run leaves
    aside.mkdir()
    (other / "reference.safetensors").rename(aside / "reference.safetensors")
    args = argparse.Namespace(command="validate", compare_to=str(other), out=None)
    with caplog.at_level(logging.WARNING):
        check_common_options(args)
    assert (other / "reference.safetensors").read_text() == "the earlier run's reference"
    assert not leftovers(other) and any("put back the earlier run" in r.getMessage() for r in caplog.records)
