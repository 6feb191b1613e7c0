"""The efficiency study on the unipixel family: its archs, the FLOPs count of Qwen2.5-VL's decoder, the
CLI."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pandas as pd
import pytest
import torch

from analysis.common.measures.flops import DecoderSizes, TokenPlan, count_flops, llm_flops_exact
from analysis.common.measures.paper_efficiency import paper_flops
from analysis.efficiency.arch import get_arch
from analysis.efficiency.scope import family_method_error
from litelvlm.errors import LiteLVLMError
from litelvlm.methods import get_method, method_names

#: the budgets of the CLI runs below (576 lies above the study image's N = 391: skipped with a warning)
BUDGETS = ["576", "192", "64"]


def hand_layer_flops(config, n: int) -> int:
    """FLOPs of one Qwen2.5-VL decoder layer on ``n`` tokens (multiply-add = 2, biases and norms not counted),
    from the shapes of transformers 5.24's ``models/qwen2_5_vl/modeling_qwen2_5_vl.py``:
    ``Qwen2_5_VLAttention`` L625-628 (q_proj d -> heads x head_dim, k_proj and v_proj d -> kv_heads x
    head_dim, o_proj heads x head_dim -> d; head_dim
    = d / heads, L612), ``eager_attention_forward`` L247 and L253 (Q K^T and A V over every head, the kv heads
    repeated), ``Qwen2MLP`` L556-558 (gate, up d -> m; down m -> d)."""
    d, heads, kv_heads, m = (config.hidden_size, config.num_attention_heads, config.num_key_value_heads,
                             config.intermediate_size)
    head_dim = d // heads
    q = o = 2 * n * d * heads * head_dim
    k = v = 2 * n * d * kv_heads * head_dim
    scores = values = 2 * heads * n * n * head_dim
    mlp = 3 * 2 * n * d * m
    return q + k + v + o + scores + values + mlp


@pytest.mark.parametrize("preset", ["3b", "7b", "tiny"])
def test_one_layer_against_the_hand_count(preset):
    from litelvlm.qwen.hf_config import qwen_config

    arch = get_arch(f"unipixel-{preset}")
    config = qwen_config(preset).text_config
    assert arch.llm == DecoderSizes.of(config) or preset == "tiny"  # the study's tiny LLM has 4 layers, not 2
    assert arch.llm.llm_hidden == config.hidden_size and arch.llm.llm_intermediate == config.intermediate_size
    kv = config.num_key_value_heads * (config.hidden_size // config.num_attention_heads)
    assert arch.llm.llm_kv_hidden == kv < config.hidden_size  # grouped-query attention
    for n in (1, 100, arch.num_patches + arch.text_tokens):
        per_layer = llm_flops_exact(arch.llm, TokenPlan.uniform(n), lm_head=False) // arch.llm.llm_layers
        assert per_layer == hand_layer_flops(config, n), n
        one_layer = TokenPlan(n, ((0, 0),))  # the paper's convention: multiply-accumulates, one layer's share
        assert paper_flops(arch.llm, one_layer) * 2 == hand_layer_flops(config, n) * arch.llm.llm_layers
    if preset == "3b":  # tied embeddings: the LM head is the same matmul (2 n d V)
        assert qwen_config(preset).tie_word_embeddings is True
        full = llm_flops_exact(arch.llm, TokenPlan.uniform(472))
        assert full - llm_flops_exact(arch.llm, TokenPlan.uniform(472),
                                      lm_head=False) == 2 * 472 * 2048 * 151936


def test_one_decoder_layer_counted_by_flop_counter_is_the_hand_count():
    from litelvlm.qwen.checkpoint import build_qwen

    qwen = build_qwen("tiny", seed=0, dtype=torch.float32)
    # the hand count's eager_attention_forward (CPU sdpa is not counted)
    qwen.set_attn_implementation("eager")
    lm = qwen.model.language_model
    n = 37
    hidden = torch.randn(1, n, lm.config.hidden_size)
    pos = torch.arange(n).view(1, 1, -1).expand(3, 1, -1)
    rotary = lm.rotary_emb(hidden, pos)
    layer = lm.layers[0]
    flops, _ = count_flops(lambda: layer(hidden, position_embeddings=rotary, attention_mask=None))
    assert flops == hand_layer_flops(lm.config, n)


def test_the_unipixel_arch_reads_the_family():
    from litelvlm.unipixel.protocol import resized_size

    arch = get_arch("unipixel-7b")
    h, w = resized_size(480, 640)  # the study's 640 x 480 photo through the protocol's resize
    assert (h, w) == (476, 644) and arch.num_patches == (h // 28) * (w // 28) == 391
    d = arch.to_dict()
    assert d["num_visual"] == 391 and d["video_grid_thw"] == [1, 34, 46] and d["family"] == "unipixel"
    assert 0 < arch.prefix_tokens < arch.text_tokens
    assert get_arch("unipixel-7b", text_tokens=40).text_tokens == 40
    with pytest.raises(LiteLVLMError, match="no CLIP tower"):
        arch.clip  # noqa: B018


def _run(tmp_path, *args) -> int:
    from litelvlm.cli import main

    return main(["efficiency", *args, "--no-figures", "--out", str(tmp_path)])


@pytest.mark.slow  # heavy: the default suite keeps a lighter case of the same rule
def test_cli_unipixel_tiny_timed(tmp_path, capsys, caplog):
    with caplog.at_level("WARNING", logger="analysis.common.grounding.grounding_runs"):
        rc = _run(tmp_path, "--arch", "unipixel-tiny", "--budgets", *BUDGETS, "--attn", "sdpa", "--warmup",
                  "0", "--repeats", "1", "--threads", "1")
    assert rc == 0
    refused = [m for m in method_names() if family_method_error("unipixel", m)]
    assert ("does not offer" in capsys.readouterr().err) == bool(refused)
    name = "analysis.common.grounding.grounding_runs"
    assert [r.getMessage() for r in caplog.records if r.name == name] == [
        "the image has 391 visual tokens: budget(s) 576 skipped"]
    df = pd.read_csv(tmp_path / "efficiency.csv")
    config = json.loads((tmp_path / "config.json").read_text())
    offered = set(config["methods"])
    assert offered == _offered()  # what the family's method_error lets through
    # the paired CLIP's forwards are charged to the methods that read it, as ground runs them
    for _, row in df.iterrows():
        spec = get_arch("unipixel-tiny").spec(row["method"])
        assert (row["clip_ms"] > 0) == spec.uses_clip and (row["text_ms"] > 0) == (
            spec.uses_clip and spec.needs_text)
    assert config["num_visual"] == 391 and config["arch"]["num_visual"] == 391
    assert set(df["num_visual"]) == {391} and set(df["budget"]) == {391, 192, 64}
    assert (df["prefill_ms"] > 0).all() and (df["sam_ms"] > 0).all()
    # a method running the tower itself (IPCV): its own run is its selector, its vision part the rest of the
    # forward less one full run of the tower (on Qwen2.5-VL the forward is that run: about 0, never below)
    tower = df["method"].map(lambda m: get_arch("unipixel-tiny").spec(m).uses_vision_tower)
    assert tower.any() and (df.loc[tower, "selector_ms"] > 0).all()
    assert (df.loc[tower, "vision_ms"] >= 0).all() and (df.loc[~tower, "vision_ms"] > 0).all()
    exact = df[df["method"].isin(["none", "dart", "divprune"])]
    # FlopCounterMode = the formula
    assert (exact["llm_tflops_measured"] == exact["llm_tflops_analytic"]).all()
    none = df[df["method"] == "none"].iloc[0]
    assert none["n_tokens"] == 391 + config["arch"]["text_tokens"]
    patches, width = 34 * 46, 32  # the 1 x 34 x 46 grid; the tiny vision tower's width
    patch_embed = 2 * patches * (3 * 2 * 14 * 14) * width  # Qwen2_5_VisionPatchEmbed's Conv3d (L101-109)
    blocks = none["vision_window_tflops"] + none["vision_full_tflops"]
    assert (none["vision_tflops"] - blocks) * 1e12 == pytest.approx(patch_embed, rel=1e-9)


def _offered() -> set[str]:
    """The methods (no oracles) the unipixel family runs: what efficiency measures by default."""
    return {m for m in method_names() if not get_method(m).oracle
            and family_method_error("unipixel", m) is None}


def test_cli_refuses_what_the_family_does_not_offer(tmp_path):
    from litelvlm.registry.families import get_family

    cls = get_family("unipixel")
    for m in method_names():  # the study asks the family, before any model is built
        assert family_method_error("unipixel", m) == cls.method_error(cls.__new__(cls), m)
    assert family_method_error("unipixel", "litelvlm") is None  # the paired CLIP's forward is counted
    assert family_method_error("unipixel", "visionzip") is None  # its variant's tower re-run is counted
    assert _run(tmp_path, "--arch", "unipixel-tiny", "--methods", "fastv", "--budgets", "576",
                "--flops-only") != 0
    assert not (tmp_path / "efficiency.csv").exists()


def test_a_tower_method_is_charged_its_own_run_on_qwens_tower_in_place_of_the_full_one(tmp_path):
    """``--flops-only`` on UniPixel's tiny Qwen2.5-VL tower: IPCV (and IPCV + FastV, the same tower run) is
    charged its own run of the tower's blocks and merger on the patches it keeps as its selection, and the
    preparation's vision forward less one full run of the tower (nothing left) as its vision part, as the
    stage costs charge it: fewer patches kept, fewer FLOPs end to end. HiPrune re-runs the whole tower."""
    assert _run(tmp_path, "--arch", "unipixel-tiny", "--flops-only", "--attn", "sdpa", "--methods",
                "none,ipcv,ipcv+fastv,hiprune", "--budgets", "64", "16", "--ipcv-layer", "2",
                "--ipcv-as-layers", "1") == 0
    df = pd.read_csv(tmp_path / "efficiency.csv").set_index(["method", "budget"])
    none = df.loc["none"].iloc[0]  # one row: no budget
    full = none["vision_tflops"] + none["projector_tflops"]
    for method in ("ipcv", "ipcv+fastv"):
        rows = df.loc[method]
        assert (rows["vision_tflops"] == 0).all() and (rows["projector_tflops"] == 0).all(), method
        assert 0 < rows.loc[16, "selector_tflops"] < rows.loc[64, "selector_tflops"] < full, method
        assert rows.loc[16, "e2e_tflops"] < rows.loc[64, "e2e_tflops"], method
    assert (df.loc["ipcv", "selector_tflops"] == df.loc["ipcv+fastv", "selector_tflops"]).all()
    # IPCV gives the LLM every token back: its prefill is none's, its whole call lighter by its tower's saving
    ipcv = df.loc[("ipcv", 64)]
    assert ipcv["llm_tflops_measured"] == none["llm_tflops_measured"]
    assert ipcv["e2e_tflops"] == pytest.approx(none["e2e_tflops"] - full + ipcv["selector_tflops"], rel=1e-12)
    hiprune = df.loc[("hiprune", 64)]
    assert hiprune["selector_tflops"] == pytest.approx(full, rel=1e-12)


@pytest.mark.parametrize("budgets", [pytest.param(("128", "64"), marks=pytest.mark.slow),
                                     pytest.param(("256", "128", "64"), marks=pytest.mark.slow)],
                         ids=["two", "three"])
def test_cli_flops_only_unipixel_3b(tmp_path, budgets):
    # full size (36 CPU-s): slow; the tiny preset's run is default
    rc = _run(tmp_path, "--arch", "unipixel-3b", "--flops-only", "--attn", "sdpa", "--budgets", *budgets)
    assert rc == 0
    df = pd.read_csv(tmp_path / "efficiency.csv")
    assert set(df["method"]) == _offered()
    # the paired CLIP is ViT-L/14-336 on a 336 px square: the same forward as GLaMM's CLIP (committed glamm-7b
    # table)
    glamm = pd.read_csv(Path(__file__).parents[2] / "results/efficiency/glamm-7b_flops/efficiency.csv")
    clip = df.set_index(["method", "budget"])["clip_tflops"]
    assert clip["litelvlm", 64] == glamm.loc[glamm["method"] == "litelvlm", "clip_tflops"].iloc[0]
    assert clip["fastv", 64] == 0 and df.loc[df["method"] == "litelvlm", "text_tflops"].gt(0).all()
    # a Qwen2.5-VL variant re-running the vision tower is charged that forward (tower and merger) as its
    # selection; one pruning inside it (IPCV) its own run, in place of the preparation's full one
    arch = get_arch("unipixel-3b")
    none = df[df["method"] == "none"].iloc[0]
    for m in [m for m in _offered() if arch.spec(m).reads_vision_blocks]:
        row = df[(df["method"] == m) & (df["budget"] == 64)].iloc[0]
        if arch.spec(m).uses_vision_tower:
            assert row["vision_tflops"] == 0 and 0 < row["selector_tflops"] < none["vision_tflops"], m
        else:
            assert row["selector_tflops"] == pytest.approx(row["vision_tflops"] + row["projector_tflops"],
                                                           rel=1e-12), m
    lite = df[(df["method"] == "litelvlm") & (df["budget"] == 64)].iloc[0]
    parts = ("vision_tflops", "selector_tflops", "projector_tflops", "sam_tflops", "clip_tflops",
             "text_tflops")
    assert lite["e2e_tflops"] == pytest.approx(sum(lite[c] for c in parts) + lite["llm_tflops_measured"],
                                               rel=1e-9)
    for col in ("paper_tflops", "llm_tflops_analytic", "llm_tflops_measured", "e2e_tflops", "sam_tflops"):
        assert df[col].map(math.isfinite).all() and (df[col] > 0).all(), col
    tower = df["method"].map(lambda m: arch.spec(m).uses_vision_tower)
    assert (df.loc[~tower, "vision_tflops"] > 0).all()
    base = {c: float(none[c]) for c in ("paper_tflops", "e2e_tflops")}
    for method, g in df[df["method"] != "none"].groupby("method"):
        # fewer, fewer FLOPs: in the LLM, or (IPCV alone, which gives the LLM every token back) in the tower
        col = "e2e_tflops" if arch.spec(method).restores_tokens else "paper_tflops"
        flops = g.sort_values("budget", ascending=False)[col].tolist()
        assert flops == sorted(flops, reverse=True) and len(set(flops)) == len(budgets), method
        assert max(flops) < base[col], method
    assert df["llm_flops_rel_diff"].abs().max() < 0.02  # FastV adds its scoring; the others are exact
