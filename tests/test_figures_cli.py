"""``litelvlm figures``: argument errors, family skipping, and the files it writes."""

from __future__ import annotations

import pytest

from analysis import figures
from litelvlm.cli import main


def test_needs_results_or_smoke(capsys, tmp_path):
    assert main(["figures", "--out", str(tmp_path)]) == 2
    assert "--results DIR, or --smoke" in capsys.readouterr().err
    assert main(["figures", "--results", str(tmp_path / "nope")]) == 2
    assert "is not a folder" in capsys.readouterr().err
    assert main(["figures", "--smoke", "--family", "bogus"]) == 2
    assert "unknown bogus" in capsys.readouterr().err
    assert not list(tmp_path.iterdir())


def test_results_without_the_family_tables_name_the_missing_files(capsys, tmp_path):
    assert main(["figures", "--results", str(tmp_path), "--family", "retention", "--out", str(tmp_path / "f")]) == 2
    err = capsys.readouterr().err
    assert "retention.parquet" in err and "litelvlm retention" in err
    assert not (tmp_path / "f").exists()


def test_list_names_every_family(capsys):
    assert main(["figures", "--list"]) == 0
    out = capsys.readouterr().out
    for name in ("reversal", "sink", "retention", "grounding", "importance", "efficiency"):
        assert name in out
    assert list(figures.FAMILIES) == ["reversal", "sink", "retention", "grounding", "importance", "efficiency"]


def test_unavailable_family_is_skipped_in_smoke_and_an_error_when_asked_for(monkeypatch, capsys, tmp_path):
    ghost = figures.Family(name="ghost", notebook="99_ghost", title="Ghost", description="", command="litelvlm ghost",
                           requires=("analysis.no_such_module",), subdir="ghost")
    monkeypatch.setattr(figures, "FAMILIES", {"ghost": ghost})
    assert main(["figures", "--smoke", "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "skipping ghost: needs analysis.no_such_module" in out and "not wired" not in out
    assert main(["figures", "--smoke", "--family", "ghost", "--out", str(tmp_path)]) == 2
    assert "analysis.no_such_module" in capsys.readouterr().err
    assert main(["figures", "--results", str(tmp_path), "--out", str(tmp_path)]) == 2  # not smoke: an error
    assert not list(tmp_path.glob("*.p*"))


def test_results_route_equals_the_family_function(tmp_path, capsys):
    fam = figures.FAMILIES["retention"]
    results = tmp_path / "results"
    fam.smoke_results(results, model="tiny-random")
    assert main(["figures", "--results", str(results), "--family", "retention", "--out", str(tmp_path / "a")]) == 0
    paths = fam(results / "retention", tmp_path / "b")  # one command's --out works too
    assert paths and {p.suffix for p in paths} == {".pdf", ".png"}
    for p in paths:
        assert (tmp_path / "a" / p.name).read_bytes() == p.read_bytes(), p.name
    assert "wrote" in capsys.readouterr().out


@pytest.mark.parametrize("bad", ["--results-typo"])
def test_unknown_option_is_a_usage_error(bad):
    with pytest.raises(SystemExit) as e:
        main(["figures", bad])
    assert e.value.code == 2
