"""The efficiency study on VideoGLaMM: one video prompt's parts, counted on ``meta``, per per-frame method,
budget and arrangement (``--arch videoglamm`` / ``videoglamm-tiny``)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pandas as pd
import pytest
import torch

from analysis.common.measures.flops import DecoderSizes, TokenPlan, llm_flops_exact
from analysis.efficiency.arch import get_arch
from litelvlm.cli import main
from litelvlm.errors import LiteLVLMError
from litelvlm.videoglamm.cost_parts import (
    VIDEO_PROMPT_TOKENS,
    VideoParts,
    context_tokens,
    pooling_flops,
    prompt_tokens,
)

LLAMA = Path("/work/shared/data/llama_tokenizer/tokenizer.json")
ROOT = Path(__file__).resolve().parents[2]


def hand_phi3_layer_flops(d: int, m: int, n: int) -> int:
    """FLOPs of one Phi-3 decoder layer on ``n`` tokens (multiply-add = 2), from transformers'
    ``modeling_phi3.py`` shapes: ``qkv_proj`` d -> 3d and ``o_proj`` d -> d (32 heads, no GQA), Q K^T and A V
    over the full n x n scores (eager, the sliding window is a mask), ``gate_up_proj`` d -> 2m and
    ``down_proj`` m -> d."""
    return 2 * n * d * 3 * d + 2 * n * d * d + 2 * 2 * n * n * d + 2 * n * d * 2 * m + 2 * n * m * d


def test_the_arch_is_phi3_mini_with_a_frame_of_clip_tokens():
    from litelvlm.videoglamm.config import get_preset
    from litelvlm.videoglamm.hf_config import phi3_config

    arch = get_arch("videoglamm")
    assert arch.family == "videoglamm" and arch.num_patches == 576
    assert arch.llm == DecoderSizes(3072, 8192, 32, 32012) == DecoderSizes.of(
        phi3_config(get_preset("videoglamm")))
    assert (arch.text_tokens, arch.prefix_tokens) == VIDEO_PROMPT_TOKENS
    assert get_arch("videoglamm", text_tokens=10).text_tokens == 10
    n = 52 + 16 * 144 + 16 * 64
    per_layer = llm_flops_exact(arch.llm, TokenPlan.uniform(n), lm_head=False) // 32
    assert per_layer == hand_phi3_layer_flops(3072, 8192, n)


@pytest.mark.skipif(not LLAMA.exists(), reason="needs the shared Llama tokenizer")
def test_the_prompt_length_is_the_official_prompt_with_phi3s_vocabulary():
    from tokenizers import AddedToken
    from transformers import PreTrainedTokenizerFast

    from litelvlm.videoglamm.tokenizer import PHI3_SPECIAL

    # Phi-3-mini's vocabulary is Llama-2's 32000 pieces and 11 added tokens (32000-32010); VideoGLaMM adds
    # [SEG]
    tok = PreTrainedTokenizerFast(tokenizer_file=str(LLAMA), bos_token="<s>", eos_token="</s>",
                                  unk_token="<unk>")
    tok.add_special_tokens({"additional_special_tokens": [AddedToken(t, special=True, normalized=False)
                                                          for t in PHI3_SPECIAL]})
    tok.add_tokens([AddedToken("[SEG]", normalized=False)])
    assert tok.convert_tokens_to_ids("[SEG]") == 32011 and tok.convert_tokens_to_ids("<|user|>") == 32010
    assert prompt_tokens(tok) == VIDEO_PROMPT_TOKENS


def test_context_tokens_and_pooling_counts():
    assert [context_tokens(196, a) for a in ("pool", "pool-min", "direct")] == [144, 144, 196]
    assert [context_tokens(81, a) for a in ("pool", "pool-min", "direct")] == [144, 81, 81]
    assert context_tokens(576, "pool") == 144
    with pytest.raises(LiteLVLMError, match="square"):
        context_tokens(100 + 1, "pool")
    # 24 -> 12: windows of 2 (every input element once); 9 -> 12: windows [floor(9i/12), ceil(9(i+1)/12))
    assert pooling_flops(24, 12, 5) == 5 * 576
    widths = [math.ceil(9 * (i + 1) / 12) - (9 * i) // 12 for i in range(12)]
    # windows overlap when upsampling
    assert widths == [1, 2, 2, 1] * 3 and pooling_flops(9, 12, 1) == 18 ** 2
    assert pooling_flops(16, 8, 3) == 3 * 256 and pooling_flops(9, 9, 2) == 2 * 81


def test_the_real_towers_counted_on_meta():
    """CLIP is 16 x ViT-L/14-336's forward (0.382 TFLOPs each: the committed glamm-7b table's CLIP);
    InternVideo2 is its 39 blocks run (of 40) on 4 chunks of 1 + 4 x 256 tokens plus the patch embedding, by
    hand."""
    from analysis.common.measures.flops import count_flops
    from litelvlm.cost.meta import MetaScalars

    parts = VideoParts(get_arch("videoglamm"), torch.bfloat16)
    with MetaScalars():
        clip, video = count_flops(parts.run_clip)[0], count_flops(parts.run_video)[0]
    glamm = pd.read_csv(ROOT / "results/efficiency/glamm-7b_flops/efficiency.csv")
    assert clip / 1e12 == pytest.approx(16 * glamm["clip_tflops"].iloc[0], rel=1e-9)
    d, n, mlp, chunks = 1408, 1 + 4 * 256, int(1408 * 48 / 11), 4
    block = 2 * n * d * 3 * d + 2 * n * d * d + 2 * 2 * n * n * d + 2 * 2 * n * d * mlp
    patch = 2 * (4 * 256) * (3 * 14 * 14) * d
    assert video == chunks * (39 * block + patch)


def _run(tmp_path, *extra, arch="videoglamm-tiny"):
    out = tmp_path / "eff"
    assert main(["efficiency", "--arch", arch, "--flops-only", "--no-figures", "--attn", "eager",
                 *extra, "--out", str(out)]) == 0
    return pd.read_csv(out / "efficiency.csv"), json.loads((out / "config.json").read_text())


def test_cli_videoglamm_tiny(tmp_path, capsys):
    df, config = _run(tmp_path, "--methods", "none", "litelvlm", "tome", "--budgets", "196", "81", "50")
    assert "skipped litelvlm at 50 (pool)" in capsys.readouterr().err
    key = df.set_index(["method", "budget", "arrangement"])
    assert len(df) == 1 + 2 * (2 * 3 + 1)  # none; two methods x (196, 81 in 3 arrangements + 50 direct)
    text = config["arch"]["text_tokens"]
    for (method, budget, arr), r in key.iterrows():
        ctx = 144 if method == "none" else context_tokens(budget, arr)
        assert r["context_tokens_per_frame"] == ctx and r["n_tokens"] == text + 16 * ctx + 16 * 64
        assert r["llm_flops_rel_diff"] == pytest.approx(0, abs=1e-12)  # FlopCounterMode = the analytic count
        parts = ["clip", "video", "text", "selector", "projector", "sam", "llm"]
        total = sum(r[f"{p}_tflops"] for p in parts[:-1]) + r["llm_tflops_measured"]
        assert r["e2e_tflops"] == pytest.approx(total, rel=1e-12)
        assert r["sam_tflops"] == pytest.approx(16 * r["sam_tflops_per_frame"])
    assert key.loc[("none", 576, "pool"), "selector_tflops"] == 0
    assert key.loc[("litelvlm", 81, "pool"), "text_tflops"] > 0 == key.loc[("tome", 81, "pool"),
                                                                           "text_tflops"]
    assert key.loc[("tome", 81, "pool"), "selector_tflops"] > key.loc[("litelvlm", 81, "pool"),
                                                                      "selector_tflops"] > 0
    # the pooled arrangements give the LLM what the unpruned model gets; pool-min and direct fewer at 81
    base = key.loc[("none", 576, "pool"), "llm_tflops_measured"]
    assert key.loc[("litelvlm", 196, "pool"), "llm_tflops_measured"] == base
    assert key.loc[("litelvlm", 81, "pool-min"), "llm_tflops_measured"] < base
    assert key.loc[("litelvlm", 196, "direct"), "llm_tflops_measured"] > base
    assert config["arrangements"] == ["pool", "pool-min", "direct"] and config["family"] == "videoglamm"


def test_cli_videoglamm_defaults_and_refusals(tmp_path, capsys):
    df, config = _run(tmp_path, "--methods", "none", "random", "--arrangements", "pool-min")
    assert config["budgets"] == [196, 81] and set(df["arrangement"]) == {"pool", "pool-min"}
    assert sorted(df["context_tokens_per_frame"]) == [81, 144, 144]
    for bad, msg in ((["--methods", "fastv"], "whole video"), (["--arrangements", "grid"], "unknown grid"),
                     (["--budgets", "577"], "--budgets: budget must satisfy 1 <= K <= 576")):
        assert main(
            ["efficiency", "--arch", "videoglamm-tiny", "--flops-only", *bad, "--out",
             str(tmp_path / "x")]) == 2
        assert msg in capsys.readouterr().err
    assert main(["efficiency", "--arch", "tiny", "--arrangements", "pool", "--out", str(tmp_path / "y")]) == 2
    assert "videoglamm" in capsys.readouterr().err
    assert not (tmp_path / "x").exists() and not (tmp_path / "y").exists()


def test_committed_table_matches_its_command():
    out = ROOT / "results/efficiency/videoglamm_flops"
    config = json.loads((out / "config.json").read_text())
    df = pd.read_csv(out / "efficiency.csv")
    assert config["command"].startswith("litelvlm efficiency --arch "
                                        "videoglamm ") and "--flops-only" in config["command"]
    eager = df[df["attn"] == "eager"].set_index(["method", "budget", "arrangement"])
    assert eager.loc[("none", 576, "pool"), "n_tokens"] == 52 + 3328
    assert eager.loc[("litelvlm", 81, "pool-min"), "n_tokens"] == 52 + 16 * 81 + 1024
    for (method, budget, arr), r in eager.iterrows():
        ctx = 144 if method == "none" else context_tokens(budget, arr)
        plan = TokenPlan(52, ((0, 16 * ctx + 16 * 64),))
        assert r["n_tokens"] == plan.n_tokens
        assert r["llm_tflops_analytic"] == pytest.approx(llm_flops_exact(get_arch("videoglamm").llm, plan)
                                                         / 1e12)


@pytest.mark.slow
def test_cli_videoglamm_tiny_timed(tmp_path):
    """Timing on the tiny preset (CPU): every part's time, the prefill's activation bytes, e2e the sum of the
    parts."""
    out = tmp_path / "eff"
    assert main(
        ["efficiency", "--arch", "videoglamm-tiny", "--threads", "1", "--warmup", "0", "--repeats", "1",
                 "--methods", "none", "litelvlm", "--budgets", "81", "--arrangements", "pool-min", "--attn",
                 "sdpa", "--no-figures", "--out", str(out)]) == 0
    df = pd.read_csv(out / "efficiency.csv").set_index(["method", "budget", "arrangement"])
    parts = ["clip_ms", "video_ms", "text_ms", "selector_ms", "projector_ms", "sam_ms", "prefill_ms"]
    for key, r in df.iterrows():
        assert all(r[p] >= 0 for p in parts) and r["llm_act_mb"] > 0 and r["e2e_mode"] == "sum of parts"
        assert r["e2e_ms"] == pytest.approx(sum(r[p] for p in parts)), key
        assert 0 < r["paper_prefill_ms"] <= r["prefill_ms"]
    none, pruned = df.loc[("none", 576, "pool")], df.loc[("litelvlm", 81, "pool-min")]
    assert none["selector_ms"] == 0 == none["text_ms"] and pruned["selector_ms"] > 0 and pruned["text_ms"] > 0
    assert pruned["llm_act_mb"] < none["llm_act_mb"]  # 2372 tokens against 3380 (pool-min keeps 81 a frame)
    assert json.loads((out / "config.json").read_text())["e2e_mode"] == "sum of parts"
    assert main(
        ["efficiency", "--arch", "videoglamm-tiny", "--quantize", "int8", "--out", str(tmp_path / "q")]) == 2
