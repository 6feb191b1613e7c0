"""Study 2, the [EOS]->[SOS] attention sink and its ablation: shares, batching, consistency, the CLI."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import torch

from analysis.sink.compute import eos_shares, sink_table
from analysis.sink.text_ablation import content_mean_embeds, rerun_text_tower
from litelvlm.cli import main

TEXTS = ["the dog on the left", "man", "a very small red car parked next to the tall building", "",
         "left zebra", "guy in blue shirt holding a racket"]


def test_eos_shares_match_transformers_attentions(tiny_hf_clip_dir, tiny_hf_clip):
    """Independent: transformers' own eager attention probabilities (output_attentions)."""
    from transformers import CLIPModel

    ref_model = CLIPModel.from_pretrained(str(tiny_hf_clip_dir), attn_implementation="eager").eval()
    trace = tiny_hf_clip.encode_text(TEXTS, hidden_states=True, warn_truncation=False)
    got = eos_shares(trace)
    ids = trace.input_ids
    with torch.no_grad():
        out = ref_model.text_model(input_ids=ids, attention_mask=(torch.arange(ids.shape[1])[None]
                                   <= trace.eos_index[:, None]).long(), output_attentions=True)
    for t, eos in enumerate(trace.eos_index.tolist()):
        for b, att in enumerate(out.attentions):
            row = att[t, :, eos].double().numpy()  # (H, S)
            np.testing.assert_allclose(got["sos"][b, t], row[:, 0], atol=1e-5)
            np.testing.assert_allclose(got["eos"][b, t], row[:, eos], atol=1e-5)
            np.testing.assert_allclose(got["content_sum"][b, t], row[:, 1:eos].sum(1), atol=1e-5)
            if eos > 1:
                np.testing.assert_allclose(got["content_max"][b, t], row[:, 1:eos].max(1), atol=1e-5)
            else:  # the empty text has no content token
                assert np.isnan(got["content_max"][b, t]).all()
            assert got["uniform"][b, t, 0] == pytest.approx(1 / (eos + 1))
    total = got["sos"] + got["eos"] + got["content_sum"]
    np.testing.assert_allclose(total, 1.0, atol=1e-5)  # causal: [EOS] sees exactly [SOS], content, itself


def test_sink_batches_without_per_sentence_loop(tiny_hf_clip, monkeypatch):
    from litelvlm.clip.traces import TextTrace

    calls = []
    orig = TextTrace.eos_attention

    def counting(self, block):
        calls.append(len(self.texts))
        return orig(self, block)

    monkeypatch.setattr(TextTrace, "eos_attention", counting)
    meta = pd.DataFrame({"text_index": np.arange(len(TEXTS))})
    big, _ = sink_table(tiny_hf_clip, TEXTS, meta, batch_size=4, progress=False)
    L = 2
    assert calls == [4] * L + [2] * L  # one call per block per batch, covering the whole batch
    one, _ = sink_table(tiny_hf_clip, TEXTS, meta, batch_size=1, progress=False)
    assert len(big) == len(TEXTS) * L * 2
    for c in ("sos", "eos", "content_sum", "uniform"):
        np.testing.assert_allclose(big[c], one[c], atol=1e-5)  # padding in a batch changes nothing
    assert list(big["text_index"].unique()) == list(range(len(TEXTS)))


@pytest.mark.parametrize("backend", ["hf", "open_clip"])
def test_rerun_with_nothing_masked_reproduces_text_embeds(backend, tiny_hf_clip, tiny_open_clip):
    clip = tiny_hf_clip if backend == "hf" else tiny_open_clip
    texts = [t for t in TEXTS if t]
    trace = clip.encode_text(texts, hidden_states=True, warn_truncation=False)
    ref = trace.text_embeds.float()
    for b in range(trace.num_layers + 1):
        torch.testing.assert_close(rerun_text_tower(clip, trace, b, mask_sos=False), ref, atol=1e-5,
                                   rtol=1e-4)
    masked = rerun_text_tower(clip, trace, 0, mask_sos=True)
    assert (masked - ref).abs().max() > 1e-4
    # masking from after the last block changes nothing
    torch.testing.assert_close(rerun_text_tower(clip, trace, trace.num_layers, mask_sos=True), ref,
                               atol=1e-5, rtol=1e-4)


def test_content_mean_against_manual(tiny_hf_clip):
    trace = tiny_hf_clip.encode_text(TEXTS, hidden_states=True, warn_truncation=False)
    got = content_mean_embeds(tiny_hf_clip, trace)
    m = tiny_hf_clip.modules()
    with torch.no_grad():
        for t, eos in enumerate(trace.eos_index.tolist()):
            if eos <= 1:
                assert torch.isnan(got[t]).all()
                continue
            x = m.text_model.final_layer_norm(trace.hidden_states[-1][t, 1:eos]).mean(0)
            torch.testing.assert_close(got[t], m.text_projection(x), atol=1e-5, rtol=1e-4)


def test_sink_cli_on_refcoco_expressions(shared_data, tiny_hf_clip_dir, tmp_path):
    exprs = shared_data / "refcoco_unc_expressions" / "val.json"
    argv = ["sink", "--model", str(tiny_hf_clip_dir), "--expressions", str(exprs), "--limit", "40",
            "--text-batch-size", "16"]
    assert main([*argv, "--out", str(tmp_path / "a")]) == 0
    df = pd.read_parquet(tmp_path / "a" / "sink.parquet")
    assert len(df) == 40 * 2 * 2
    for c in ("text_index", "sentence", "layer", "head", "sos", "eos", "content_sum", "content_max",
              "uniform", "n_tokens"):
        assert c in df.columns
    np.testing.assert_allclose(df["uniform"], 1 / df["n_tokens"])
    np.testing.assert_allclose(df["sos"] + df["eos"] + df["content_sum"], 1.0, atol=1e-5)
    summary = pd.read_csv(tmp_path / "a" / "summary.csv")
    assert set(summary["head"]) == {-1, 0, 1} and {"sos_mean", "uniform_mean", "sos_ci_low"} <= set(summary)
    assert main([*argv, "--out", str(tmp_path / "b")]) == 0
    assert (tmp_path / "a" / "sink.parquet").read_bytes() == (tmp_path / "b" / "sink.parquet").read_bytes()


def test_sink_cli_ablation_on_coco128(coco128, tiny_hf_clip_dir, tmp_path, capsys):
    out = tmp_path / "abl"
    rc = main(["sink", "--model", str(tiny_hf_clip_dir), "--refer-dir", str(coco128), "--image-dir",
               str(coco128 / "images"), "--limit", "30", "--ablate-from", "0", "1", "--layers", "all",
               "--n-boot", "100", "--cache-dir", str(tmp_path / "cache"), "--out", str(out), "--verbose"])
    assert rc == 0
    # the ablation's result on screen (--verbose): one line per vision layer
    printed = capsys.readouterr().out
    assert "ablation: AUROC of reversed similarity" in printed
    layer_lines = [ln for ln in printed.splitlines() if ln.startswith("  layer ")]
    assert layer_lines and all("original" in ln and "sos_masked_from1" in ln and "vs original" in ln
                               for ln in layer_lines)
    abl = pd.read_parquet(out / "ablation.parquet")
    assert set(abl["variant"]) == {"original", "sos_masked_from0", "sos_masked_from1", "content_mean"}
    counts = abl.groupby("variant").size()
    assert counts.nunique() == 1  # every variant scored on the same sentences and layers
    summ = pd.read_csv(out / "ablation_summary.csv")
    assert summ.loc[summ["variant"] != "original", "delta_vs_original"].notna().any()
    cfg = json.loads((out / "config.json").read_text())
    assert cfg["counts"]["ablation_consistency_max_abs_diff"] < 1e-4
    # the original variant is Study 1 itself: the same numbers as `litelvlm reversal`
    rc = main(["reversal", "--model", str(tiny_hf_clip_dir), "--refer-dir", str(coco128), "--limit", "30",
               "--layers", "all", "--n-boot", "100", "--cache-dir", str(tmp_path / "cache"),
               "--out", str(tmp_path / "rev")])
    rev = pd.read_parquet(tmp_path / "rev" / "reversal.parquet")
    orig = abl[abl["variant"] == "original"].reset_index(drop=True)
    np.testing.assert_allclose(orig["auroc_reversed"], rev["auroc_reversed"], atol=1e-6)


@pytest.mark.parametrize("extra,match", [
    ([], "give --expressions"),
    (["--expressions", "EXPR", "--refer-dir", "REFER"], "not both"),
    (["--expressions", "/nonexistent/val.json"], "does not exist"),
    (["--expressions", "EXPR", "--limit", "0"], "--limit"),
    (["--refer-dir", "REFER", "--image-dir", "REFER/images", "--ablate-from", "9"], "--ablate-from 9"),
])
def test_sink_bad_arguments_exit_2(extra, match, tmp_path, tiny_hf_clip_dir, capsys, request):
    from litelvlm.data.fixtures import write_tiny_refer

    refer = write_tiny_refer(tmp_path / "r")
    expr = tmp_path / "e.json"
    expr.write_text(json.dumps({"items": [{"text": "a dog"}]}))
    extra = [str(refer) + e[5:] if e.startswith("REFER") else str(expr) if e == "EXPR" else e for e in extra]
    out = tmp_path / "out"
    assert main(["sink", "--model", str(tiny_hf_clip_dir), *extra, "--out", str(out)]) == 2
    assert match in capsys.readouterr().err
    assert not out.exists()


def test_sink_plots_and_examples(tiny_hf_clip):
    import matplotlib.pyplot as plt

    from analysis.sink import plots
    from analysis.sink.compute import eos_attention_examples, summarise_sink

    ex = eos_attention_examples(tiny_hf_clip, TEXTS, 2)
    sums = ex.groupby(["text_index", "layer"])["attention"].sum()
    np.testing.assert_allclose(sums, 1.0, atol=1e-5)
    assert ex[ex["text_index"] == 0]["token"].iloc[0].startswith("<|startoftext")
    meta = pd.DataFrame({"text_index": np.arange(len(TEXTS))})
    df, _ = sink_table(tiny_hf_clip, TEXTS, meta, batch_size=8, progress=False)
    summary = summarise_sink(df, n_boot=50)
    fig, ax = plots.plot_sink_heatmap(summary)
    assert ax.images[0].get_array().shape == (2, 2)
    fig2, ax2 = plots.plot_eos_attention_example(ex)
    assert len(ax2.get_xticklabels()) == ex[ex["text_index"] == 0]["position"].nunique()
    abl = pd.DataFrame([{"breakdown": "all", "variant": v, "layer": layer, "auroc_reversed_mean": 0.6,
                         "auroc_reversed_ci_low": 0.55, "auroc_reversed_ci_high": 0.65}
                        for v in ("original", "content_mean", "sos_masked_from0") for layer in (1, 2)])
    fig3, ax3 = plots.plot_ablation_bars(abl)
    assert len(ax3.patches) == 6
    for f in (fig, fig2, fig3):
        plt.close(f)


def test_open_clip_shares_equal_hf_on_the_same_weights(tiny_hf_clip, tiny_open_clip):
    """The open_clip fixture holds the hf weights converted: both backends must see the same sink."""
    texts = [t for t in TEXTS if t]
    a = tiny_hf_clip.encode_text(texts, hidden_states=True, warn_truncation=False)
    b = tiny_open_clip.encode_text(texts, hidden_states=True, warn_truncation=False)
    assert a.eos_index.tolist() == b.eos_index.tolist()
    sa, sb = eos_shares(a), eos_shares(b)
    for c in ("sos", "eos", "content_sum", "content_max", "uniform"):
        np.testing.assert_allclose(sa[c], sb[c], atol=1e-4)


def test_a_share_over_uniform_is_drawn_on_a_diverging_map_centred_on_one():
    """The ratio to the uniform share sits around 1: a diverging map whose middle colour is 1 (equal to
    uniform), symmetric in log space so 2x and 0.5x are equally far; the shares themselves stay sequential."""
    import matplotlib.pyplot as plt

    from analysis.sink import plots

    summary = pd.DataFrame([{"layer": layer, "head": head, "sos_mean": s, "uniform_mean": 0.1}
                            for layer, head, s in [(0, 0, 0.05), (0, 1, 0.1), (1, 0, 0.4), (1, 1, 0.02)]])
    fig, ax = plots.plot_sink_heatmap(summary, "sos_mean", relative=True)
    im = ax.images[0]
    assert im.get_cmap().name in plots.DIVERGING and im.norm(1.0) == pytest.approx(0.5)
    assert im.norm(4.0) == pytest.approx(1 - im.norm(0.25))   # 4x and a quarter equally far from 1
    bar = fig.axes[-1]   # the colour bar: plain numbers, 1 in the middle, no scientific notation
    labels = [t.get_text() for t in bar.get_yticklabels()]
    assert labels[2] == "1" and not any("times" in t or "^" in t for t in labels), labels
    fig2, ax2 = plots.plot_sink_heatmap(summary, "sos_mean")
    assert ax2.images[0].get_cmap().name not in plots.DIVERGING and ax2.images[0].norm.vmin == 0
    plt.close(fig)
    plt.close(fig2)
