"""``litelvlm select``: JSON contract, overlay, and clear errors with exit status 2."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from litelvlm.cli import main


@pytest.fixture(scope="module")
def image(tmp_path_factory):
    p = tmp_path_factory.mktemp("img") / "scene.png"
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 255, (80, 120, 3), dtype=np.uint8)).save(p)
    return str(p)


def run(capsys, *argv):
    code = main(list(argv))
    out = capsys.readouterr()
    return code, out.out, out.err


def test_json_output_contract(capsys, tiny_hf_clip_dir, image):
    code, out, _ = run(capsys, "select", "--model", str(tiny_hf_clip_dir), "--image", image, "--text",
                       "a cup", "--text", "the dog", "--budget", "5", "--json")
    assert code == 0
    res = json.loads(out)
    assert set(res) == {"method", "budget", "grid", "indices", "weights"}
    assert res["weights"] in ("random", "toy", "real")
    assert res["method"] == "litelvlm" and res["budget"] == 5 and res["grid"] == [4, 4]
    assert len(res["indices"]) == 5 and all(0 <= i < 16 for i in res["indices"])


def test_both_backends_select_the_same_tokens(capsys, tiny_hf_clip_dir, tiny_open_clip_dir, image):
    """Same weights through each backend's own preprocessing and tokenizer: the same tokens."""
    outs = []
    for model in (str(tiny_hf_clip_dir), f"local-dir:{tiny_open_clip_dir}"):
        code, out, _ = run(capsys, "select", "--model", model, "--image", image, "--text", "a cup",
                           "--budget", "6", "--method", "litelvlm", "--json")
        assert code == 0
        outs.append(json.loads(out)["indices"])
    assert outs[0] == outs[1]


def test_overlay_and_human_summary(capsys, tiny_hf_clip_dir, image, tmp_path):
    png = tmp_path / "overlay.png"
    code, out, _ = run(capsys, "select", "--model", str(tiny_hf_clip_dir), "--image", image, "--text",
                       "a cup", "--budget", "4", "--method", "vispruner", "--save-overlay", str(png))
    assert code == 0 and "kept 4 of 16" in out and png.stat().st_size > 0
    assert Image.open(png).format == "PNG"


@pytest.mark.parametrize("extra,message", [
    # its form: at parsing
    (["--budget", "0"], "argument --budget: budget must satisfy 1 <= K (a whole number"),
    (["--budget", "many"], "argument --budget: budget must satisfy 1 <= K (a whole number"),
    (["--budget", "17"], "1 <= K <= 16"),  # its range: counted once against the image's patches
    (["--method", "nope"], "known methods"),
])
def test_bad_arguments_exit_2_without_writing(capsys, tiny_hf_clip_dir, image, tmp_path, extra, message):
    png = tmp_path / "o.png"
    argv = ["select", "--model", str(tiny_hf_clip_dir), "--image", image, "--text", "x", "--budget", "3",
            "--save-overlay", str(png), *extra]
    code, _, err = run(capsys, *argv)
    assert code == 2 and message in err and "Traceback" not in err
    assert not png.exists() and list(tmp_path.iterdir()) == []


def test_missing_and_unreadable_images(capsys, tiny_hf_clip_dir, tmp_path):
    bad = tmp_path / "bad.jpg"
    bad.write_text("not an image")
    for path, msg in ((tmp_path / "missing.jpg", "does not exist"), (bad, "could not be read")):
        code, _, err = run(capsys, "select", "--model", str(tiny_hf_clip_dir), "--image", str(path),
                           "--text", "x", "--budget", "3")
        assert code == 2 and msg in err and str(path) in err


def test_model_not_found_offline_names_it(capsys, image):
    code, _, err = run(capsys, "select", "--model", "org/not-downloaded", "--image", image, "--text", "x",
                       "--budget", "3")
    assert code == 2 and "org/not-downloaded" in err and "save_pretrained" in err


def test_long_text_warns_and_still_selects(capsys, tiny_hf_clip_dir, image):
    code, out, err = run(capsys, "select", "--model", str(tiny_hf_clip_dir), "--image", image,
                         "--text", "word " * 120, "--budget", "3", "--json")
    assert code == 0 and "truncated" in err and len(json.loads(out)["indices"]) == 3


def test_list_methods_works_on_its_own(capsys):
    from litelvlm.cli import main

    assert main(["select", "--list-methods"]) == 0
    out = capsys.readouterr().out
    for name in ("litelvlm", "fastv", "tome", "dart", "divprune", "none"):
        assert f"\n{name} " in "\n" + out
    assert main(["select", "--text", "a dog"]) == 2
    assert "--image and --budget required" in capsys.readouterr().err


def test_a_reader_that_goes_away_is_not_an_error():
    """``litelvlm select --list-methods | head -1``: the closed pipe ends the command quietly, status 0."""
    import subprocess
    import sys

    proc = subprocess.Popen([sys.executable, "-c", "import sys; from litelvlm.cli import main; "
                             "sys.exit(main(['select', '--list-methods']))"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    proc.stdout.close()  # before anything is printed (the command imports torch first)
    err = proc.stderr.read().decode()
    assert proc.wait(timeout=120) == 0, err
    assert "Traceback" not in err and "BrokenPipe" not in err


def test_unknown_option_is_reported_under_the_subcommand_usage(capsys):
    from litelvlm.cli import main

    assert main(["select", "--list-methods", "--bogus"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("litelvlm select: error: ") and "unrecognized arguments: --bogus" in err


@pytest.mark.parametrize("method", ["litelvlm", "visionzip", "vispruner"])
def test_summary_says_what_each_part_supplied(capsys, tiny_hf_clip_dir, image, method):
    """``kept: a=x, b=y`` counts the kept tokens per part (summing to K), not the size of each part
    (LiteLVLM's context part is a ranking of every patch)."""
    code, out, _ = run(capsys, "select", "--model", str(tiny_hf_clip_dir), "--image", image, "--text",
                       "a cup", "--text", "the dog", "--budget", "5", "--method", method)
    assert code == 0 and "parts:" not in out
    line = next(s.strip() for s in out.splitlines() if s.strip().startswith("kept:"))
    counts = {k: int(v) for k, v in (kv.split("=") for kv in line[len("kept: "):].split(", "))}
    assert sum(counts.values()) == 5
    expected = {"litelvlm": ["similarity", "context"], "visionzip": ["dominant", "contextual"],
                "vispruner": ["important", "diverse"]}[method]
    assert list(counts) == expected


def test_kept_per_part_rules():
    import torch

    from litelvlm.commands.select import kept_per_part

    # LiteLVLM: the context part ranks every patch; kept indices in the similarity union count there
    parts = {"similarity": torch.tensor([3, 7]), "context": torch.arange(16)}
    assert kept_per_part([5, 3, 7], parts) == {"similarity": 2, "context": 1}
    assert kept_per_part([3, 7], parts) == {"similarity": 2, "context": 0}
    # VisionZip keeps CLS (-1) in its dominant part; PruMerge's merged token (-2) is in no part
    assert kept_per_part([-1, 2, 9], {"dominant": torch.tensor([-1, 2]), "contextual": torch.tensor([9])}) \
        == {"dominant": 2, "contextual": 1}
    assert kept_per_part([1, -2], {"outliers": torch.tensor([1]), "pruned": torch.tensor([4, 5])}) \
        == {"outliers": 1, "pruned": 0, "merged": 1}
    # parts that are no index sets (ToMe's merge map, DivPrune's pick order): no breakdown
    assert kept_per_part([0, 1], {"assignment": torch.tensor([0, 1, 1]), "size": torch.tensor([1, 2])}) == {}


def test_summary_and_overlay_name_the_weights_the_query_and_non_patch_indices(capsys, image, tmp_path,
                                                                              monkeypatch):
    """A random model's summary ends with the RANDOM WEIGHTS line, a -1 in the kept indices is explained, and
    the overlay carries the query and the weights."""
    from litelvlm.pruning import plot

    figs = []
    real = plot.plot_kept_tokens
    monkeypatch.setattr(plot, "plot_kept_tokens", lambda *a, **k: figs.append(real(*a, **k)) or figs[-1])
    png = tmp_path / "kept.png"
    code, out, _ = run(capsys, "select", "--model", "tiny336-random", "--image", image, "--text",
                       "the red cup", "--budget", "8", "--method", "visionzip", "--save-overlay", str(png))
    assert code == 0 and png.stat().st_size > 0
    lines = out.splitlines()
    assert "  -1: the [CLS] token (VisionZip passes it on) (patch indices are 0..575, raster order)" in lines
    assert lines[-1].startswith("RANDOM WEIGHTS (tiny336-random)")
    fig, ax = figs[0]
    assert '"the red cup"' in ax.get_title() and any(t.get_text().startswith("RANDOM WEIGHTS")
                                                     for t in fig.texts)
