"""A study that recomputes all its tables refuses an --out holding another model's results (naming the
option), and leaves that run's files as they were; the same model reruns into its own folder."""

from __future__ import annotations

import hashlib

import pytest

from litelvlm.cli import main


def _files(out):
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(out.iterdir()) if p.is_file()}


@pytest.mark.parametrize("study, extra", [
    ("reversal", ["--limit-sentences", "6"]),
    ("sink", ["--limit-sentences", "6"]),
    ("retention", ["--budgets", "8"]),
])
def test_another_model_is_refused(coco128, tmp_path, capsys, study, extra):
    out = tmp_path / study
    data = [] if study == "retention" else ["--refer-dir", str(coco128)]
    first = [study, "--model", "tiny336-random", *data, *extra, "--out", str(out)]
    assert main(first) == 0
    before = _files(out)
    capsys.readouterr()
    assert main([study, "--model", "tiny-random", *data, *extra, "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert "holds results of model 'tiny336-random'" in err and "differs in: --model" in err
    assert main(
        [study, "--model", "tiny336-random", "--backend", "open_clip", *data, *extra, "--out", str(out)]) == 2
    assert "differs in: --backend" in capsys.readouterr().err
    assert _files(out) == before  # nothing of the earlier run changed
    assert main(first) == 0  # the same model reruns into its folder
