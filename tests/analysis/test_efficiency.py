"""Efficiency study: analytic vs FlopCounterMode FLOPs, conventions, memory accounting, the CLI."""

from __future__ import annotations

import contextlib
import io
import json
import statistics
from pathlib import Path
from types import SimpleNamespace

import pandas as pd
import pytest
import torch

from analysis.common.measures.flops import (
    PAPER_TFLOPS,
    TokenPlan,
    count_flops,
    fit_paper_text_tokens,
    llm_flops_exact,
    llm_macs_fastv_convention,
    llm_macs_swiglu,
)
from analysis.efficiency.arch import get_arch
from analysis.efficiency.flops import token_plan
from analysis.efficiency.options import EfficiencyArgs
from analysis.efficiency.scope import checked_scope
from litelvlm.errors import LiteLVLMError
from litelvlm.glamm.cost import OFFICIAL_PREFIX_TOKENS, OFFICIAL_PROMPT_TOKENS, with_sizes
from litelvlm.machine.memory import LiveTensorBytes, peak_activation_bytes
from tests.md_tables import markdown_tables

METHODS = ["none", "litelvlm", "litelvlm-ctx", "clip_topsim", "vispruner", "visionzip", "random", "fastv"]
BUDGETS = [576, 192, 128, 64, 32]


def fastv_scoring_bound(arch, plan: TokenPlan) -> int:
    """FLOPs the library's FastV may spend on scoring beyond the analytic prefill: layer K-1's q (last
    row) and k (all rows) projections recomputed, and the last row's attention logits."""
    d, n = arch.glamm.llm_hidden, plan.n_before
    return 2 * d * d * (n + 1) + 2 * n * d


def assert_measured_matches_analytic(arch, plan: TokenPlan, measured: float, what,
                                     slack: float = 0.0) -> None:
    """FlopCounterMode's count of the pipeline's prefill is the analytic count of its token schedule
    (within 1%; FastV: plus at most its scoring). ``slack``: FLOPs lost to a float round trip."""
    analytic = llm_flops_exact(arch.glamm, plan)
    if plan.prune_layer:  # FastV: the prefill plus its scoring in layer K-1
        assert -slack <= measured - analytic <= fastv_scoring_bound(arch, plan) + slack, what
    else:
        assert measured == pytest.approx(analytic, rel=0.01), what


def test_arch_reuses_library_definitions():
    from litelvlm.clip.random_init import ARCHS as CLIP_ARCHS
    from litelvlm.glamm.config import ARCHS as GLAMM_ARCHS

    a = get_arch("glamm-7b")
    assert a.glamm is GLAMM_ARCHS["glamm-7b"]
    assert a.clip is CLIP_ARCHS["vit-l-14-336"]
    assert a.num_patches == 576
    tiny = get_arch("tiny")
    assert tiny.glamm.llm_hidden == GLAMM_ARCHS["tiny"].llm_hidden and tiny.glamm.vocab_size > 0
    scaled = get_arch("scaled")
    assert scaled.glamm is GLAMM_ARCHS["scaled"] and scaled.num_patches == 576
    with pytest.raises(LiteLVLMError, match="unknown --arch"):
        get_arch("glamm-13b")


def test_decoder_sizes_from_any_family_config_count_as_the_arch(tiny_glamm):
    """``validate`` counts a family's FLOPs from its decoder config (``DecoderSizes``) and plans from N, the
    layers and the prompt (``schedule_plan``): the same numbers as GLaMM's arch and ``token_plan``."""
    from analysis.common.measures.flops import DecoderSizes, schedule_plan

    g = tiny_glamm.model.arch
    sizes = DecoderSizes.of(tiny_glamm.language_model.config)
    assert (sizes.llm_hidden, sizes.llm_intermediate, sizes.llm_layers) == (g.llm_hidden, g.llm_intermediate,
                                                                             g.llm_layers)
    arch = get_arch("glamm-7b")
    for method, budget in (("none", 576), ("litelvlm", 64), ("fastv", 64), ("sparsevlm", 192), ("dart", 1)):
        plan = schedule_plan(method, budget, 576, 32, arch.text_tokens)
        assert plan == token_plan(arch, method, budget), method
        assert llm_flops_exact(DecoderSizes(4096, 11008, 32, arch.glamm.vocab_size), plan) == \
            llm_flops_exact(arch.glamm, plan)


def test_token_plan_stages():
    arch = get_arch("glamm-7b")
    t = arch.text_tokens
    assert token_plan(arch, "none", 576) == TokenPlan(t, ((0, 576),))
    assert token_plan(arch, "litelvlm", 64) == TokenPlan(t, ((0, 64),))
    fv = token_plan(arch, "fastv", 64, SimpleNamespace(fastv_layer=3))
    assert fv == TokenPlan(t, ((0, 576), (3, 64)), "fastv", 64)
    assert (fv.n_before, fv.n_tokens, fv.prune_layer) == (t + 576, t + 64, 3)
    assert fv.layers(32) == [(3, t + 576), (29, t + 64)]
    assert token_plan(arch, "dart", 128) == TokenPlan(t, ((0, 576), (2, 128)), "dart", 128)
    assert token_plan(arch, "divprune", 64) == TokenPlan(t, ((0, 64),), "divprune", 64)
    # several pruning stages (SparseVLM at K=192: 576 visual tokens in layers 0-2, then 309, 204, 113)
    sparse = TokenPlan(t, ((0, 576), (3, 309), (7, 204), (16, 113)))
    assert token_plan(arch, "sparsevlm", 192) == TokenPlan(t, sparse.stages, "sparsevlm", 192)
    assert sparse.layers(32) == [(3, t + 576), (4, t + 309), (9, t + 204), (16, t + 113)]
    g = arch.glamm
    by_stage = sum(llm_flops_exact(g, TokenPlan(t, ((0, v),)), lm_head=False) // 32 * c
                    for c, v in ((3, 576), (4, 309), (9, 204), (16, 113)))
    assert llm_flops_exact(g, sparse, lm_head=False) == by_stage
    assert llm_flops_exact(g, sparse) - llm_flops_exact(g, sparse, lm_head=False) == 2 * (
        t + 113) * g.llm_hidden * g.vocab_size
    for bad in (((1, 576),), ((0, 576), (3, 64), (3, 32)), ()):
        with pytest.raises(LiteLVLMError, match="stages"):
            TokenPlan(t, bad)
    with pytest.raises(LiteLVLMError, match="layers"):
        TokenPlan(t, ((0, 576), (32, 64))).layers(32)


@pytest.fixture(scope="module")
def meta_parts():
    """``parts(name)``: the tiny or the 4-layer glamm-7b pipeline on meta, with its parts, built when a test
    first asks for it (a worker running one case builds that case's alone)."""
    from litelvlm.cost.meta import MetaScalars
    from litelvlm.glamm.cost_parts import PipelineParts, build_pipeline

    built = {}

    def parts(name: str):
        if name not in built:
            arch = get_arch(name)
            if name == "glamm-7b":
                arch = with_sizes(arch, llm_layers=4)
            with MetaScalars():
                built[name] = PipelineParts(build_pipeline(arch, "meta", torch.bfloat16, "eager"), arch)
        return built[name]

    return parts


@pytest.mark.parametrize("arch_name", ["tiny", "glamm-7b"])
def test_analytic_flops_match_flop_counter_for_every_method_and_budget(arch_name, meta_parts):
    # glamm-7b at its full widths (d=4096, m=11008, V=32007) with 4 of its 32 layers, to stay fast here;
    # the all-32-layer model is checked by test_cli_flops_only_glamm7b
    from litelvlm.cost.meta import MetaScalars

    parts = meta_parts(arch_name)
    arch = parts.arch
    plans = {(m, b): token_plan(arch, m, b) for m in METHODS for b in BUDGETS}
    with MetaScalars():
        measured = {p: count_flops(lambda p=p: parts.run_prefill(p))[0] for p in set(plans.values())}
    for (method, budget), plan in plans.items():
        assert_measured_matches_analytic(arch, plan, measured[plan], (method, budget))
    # FastV: the first K=2 layers see all tokens, so it costs more than CLIP-side pruning at the same K
    fv, cs = plans["fastv", 64], plans["litelvlm", 64]
    assert fv.n_before == arch.n_tokens(576) and fv.n_tokens == cs.n_tokens == arch.n_tokens(64)
    L = arch.glamm.llm_layers
    full = llm_flops_exact(arch.glamm, plans["none", 576], lm_head=False)
    pruned = llm_flops_exact(arch.glamm, cs, lm_head=False)
    expect = 2 / L * full + (L
                             -
                             2) / L * pruned + 2 * cs.n_tokens * arch.glamm.llm_hidden * arch.glamm.vocab_size
    assert llm_flops_exact(arch.glamm, fv) == pytest.approx(expect, rel=1e-12)
    assert measured[fv] > measured[cs]


def test_every_prefill_of_a_count_shares_one_memo_and_counts_what_a_fresh_one_counts(meta_parts):
    """``llm_prefills`` runs every plan under both kernels in one ``MetaScalars``: each prefill's FLOPs and
    bytes are what it gives in a mode of its own, and the later prefills reuse what the earlier ran."""
    from litelvlm.cost.meta import MetaScalars, llm_prefills, meta_prefill
    from litelvlm.glamm.cost_parts import set_attention

    parts = meta_parts("tiny")
    runs = (("none", 576), ("litelvlm", 64), ("fastv", 64))
    plans = {(m, b): token_plan(parts.arch, m, b) for m, b in runs}
    try:
        shared = llm_prefills(parts, plans, ["eager", "sdpa"], lambda attn: set_attention(parts.pipe, attn))
        assert set(shared) == {(a, p) for a in ("eager", "sdpa") for p in plans.values()}
        one, alone = MetaScalars(), 0
        for (attn, plan), counted in shared.items():
            set_attention(parts.pipe, attn)
            fresh = MetaScalars()
            assert meta_prefill(parts, plan, fresh) == counted == meta_prefill(parts, plan, one), (attn, plan)
            alone += fresh.hits
        assert one.hits > alone  # a prefill answered from the ones before it
    finally:
        set_attention(parts.pipe, "eager")  # the fixture's kernel, for the module's other tests


def test_prefill_is_grounds_llm_forward():
    # the study's prefill runs the LLM as GlammPipeline.ground does (FastV: the library's), on the
    # pipeline built from the preset: its logits at the [SEG]-predicting rows are the LM head of the
    # hidden states ground returns
    from litelvlm.cost.meta import QUERY_TOKENS
    from litelvlm.glamm.cost_parts import PipelineParts, build_pipeline

    arch = get_arch("tiny")
    parts = PipelineParts(build_pipeline(arch, "cpu", torch.float32, "eager"), arch)
    head = parts.pipe.model.llava.lm_head
    assert parts.pipe.model.arch is arch.glamm and parts.prepared.input_ids.numel() == arch.text_tokens + 1
    assert parts.prepared.text.input_ids.shape == (1, QUERY_TOKENS)  # the question the selectors read
    with torch.no_grad():
        for method, budget in (("none", 576), ("fastv", 64)):
            out = parts.pipe.ground(parts.prepared, method, budget, **parts.options(method))
            logits = parts.run_prefill(token_plan(arch, method, budget))
            assert logits.shape[1] == out.seq_len == arch.n_tokens(budget)
            torch.testing.assert_close(logits[0, out.seg_positions], head(out.seg_hidden))
        masks = parts.run_e2e("litelvlm", 64)
    assert masks.shape == (1, *reversed(parts.image.size))


def test_a_selection_on_the_llms_inputs_is_its_own_part_not_the_prefills():
    """DivPrune and CDPruner select on the LLM's input embeddings before the LLM: their selection is a part
    of its own (``run_llm_input_select``, timed as ``selector_ms``, as ``validate``'s stages time it and as
    its FLOPs are counted), and their prefill is the LLM on K tokens, the prefill of a CLIP-side method."""
    from litelvlm.glamm.cost_parts import PipelineParts, build_pipeline

    arch = get_arch("tiny")
    parts = PipelineParts(build_pipeline(arch, "cpu", torch.float32, "sdpa"), arch)
    with torch.no_grad():
        clip_side = parts.run_prefill(token_plan(arch, "litelvlm", 16))
        for method in ("divprune", "cdpruner"):
            assert torch.equal(parts.run_prefill(token_plan(arch, method, 16)), clip_side), method
            assert len(parts.run_llm_input_select(method, 16).indices) == 16, method


def test_conventions_and_the_papers_flops():
    g = get_arch("glamm-7b").glamm
    d, m, L = g.llm_hidden, g.llm_intermediate, g.llm_layers
    n = 640
    plan = TokenPlan.uniform(n)
    assert llm_macs_fastv_convention(g, plan) == L * (4 * n * d * d + 2 * n * n * d + 2 * n * d * m)
    assert llm_macs_swiglu(g, plan) * 2 + 2 * n * d * g.vocab_size == llm_flops_exact(g, plan)
    fit = fit_paper_text_tokens(g)
    # the paper's 4.66 / 2.11 / 1.27 "TB" are SwiGLU multiply-accumulates without the LM head, with ~128
    # text tokens: one prompt length explains all three numbers within 2%
    best = fit["mac_swiglu"]
    assert 110 <= best["best_text_tokens"] <= 145
    for k, v in PAPER_TFLOPS.items():
        assert best["tflops_at_best"][k] == pytest.approx(v, rel=0.02)
    spread = max(best["text_tokens"].values()) - min(best["text_tokens"].values())
    assert spread < 10
    # the other conventions need very different prompt lengths per row: they do not fit
    for conv in ("exact", "fastv"):
        t = fit[conv]["text_tokens"]
        assert max(t.values()) - min(t.values()) > 50, conv


def test_live_tensor_bytes_known_answer():
    for device in ("cpu", "meta"):
        w = torch.empty(1000, device=device)  # exists before: like weights, never counted
        with torch.no_grad(), LiveTensorBytes() as mem:
            a = torch.empty(1000, dtype=torch.float32, device=device) + 1  # 4000 B temporary + 4000 B result
            b = torch.zeros(250, dtype=torch.float64, device=device)       # 2000 B (the temporary is gone)
            del a
            c = w[:10]                                                     # a view of w: 0 B
            d = torch.ones(100, dtype=torch.bfloat16, device=device)       # 200 B
        assert mem.peak == 8000, device  # the temporary and the sum, at once
        assert mem.live == 2200, device
        del b, c, d


def test_peak_activation_bytes_of_a_linear_excludes_weights():
    lin = torch.nn.Linear(64, 32, bias=False)
    x = torch.randn(10, 64)
    peak, kept = peak_activation_bytes(lambda: lin(x), "cpu")
    assert peak == kept == 10 * 32 * 4  # only the output; weights (8 KiB) and inputs excluded


def test_timing_median_and_cuda_time_off_gpu():
    from litelvlm.cost.timing import cuda_time_ms, wall_time_ms

    calls = []
    t = wall_time_ms(lambda: calls.append(1), "cpu", warmup=2, repeats=3)
    assert len(calls) == 5 and t["repeats"] == 3 and t["min"] <= t["median"] <= t["max"]
    assert cuda_time_ms(lambda: None, "cpu") != cuda_time_ms(lambda: None, "cpu")  # NaN off CUDA


def test_interleaved_wall_time_calls_round_robin():
    from litelvlm.cost.timing import interleaved_wall_ms

    order = []
    t = interleaved_wall_ms({"a": lambda: order.append("a"), "b": lambda: order.append("b")}, "cpu",
                            warmup=1, repeats=2)
    assert order == ["a", "b"] * 3
    assert set(t) == {"a", "b"} and t["a"]["repeats"] == 2 and t["b"]["min"] <= t["b"]["median"]


def check_measured_column(df: pd.DataFrame, arch_name: str) -> None:
    """Every row of an ``efficiency.csv``: the analytic count of its token schedule, and the measured
    count matching it (:func:`assert_measured_matches_analytic`, up to the CSV's float round trip)."""
    arch = get_arch(arch_name)
    for r in df.itertuples():
        plan = token_plan(arch, r.method, r.budget)
        assert r.llm_tflops_analytic == llm_flops_exact(arch.glamm, plan) / 1e12, r
        measured = r.llm_tflops_measured * 1e12
        assert_measured_matches_analytic(arch, plan, measured, r, slack=1e-9 * measured)


def _cli(args, tmp_path):
    from litelvlm.cli import main

    return main(["efficiency", *args, "--out", str(tmp_path)])


def test_cli_flops_only_tiny_columns_and_config(tmp_path):
    rc = _cli(
        ["--arch", "tiny", "--flops-only", "--methods", "none", "litelvlm", "fastv", "--budgets", "576", "64",
               "--attn", "sdpa", "--no-figures"], tmp_path)
    assert rc == 0
    df = pd.read_csv(tmp_path / "efficiency.csv")
    for col in ("method", "budget", "n_tokens", "llm_tflops_analytic", "llm_tflops_measured", "e2e_tflops",
                "llm_tmacs_fastv_convention", "llm_tmacs_paper_convention", "clip_tflops", "sam_tflops"):
        assert col in df, col
    check_measured_column(df, arch_name="tiny")
    assert set(df["method"]) == {"none", "litelvlm", "fastv"} and len(df) == 5
    # CLIP and SAM don't shrink with pruning; end to end = the sum of the parts
    assert df["clip_tflops"].nunique() == 1 and df["sam_tflops"].nunique() == 1
    parts = df[["clip_tflops", "text_tflops", "selector_tflops", "projector_tflops", "llm_tflops_measured",
                "sam_tflops"]].sum(axis=1)
    assert (parts - df["e2e_tflops"]).abs().max() < 1e-12
    # the pipeline projects all N patch tokens and gathers the kept ones (ground's clip_side)
    # the projector runs on the K kept CLIP features (the official order), on all N without a CLIP-side
    # selection
    proj = df.groupby("method")["projector_tflops"]
    assert proj.max()["none"] == proj.max()["fastv"] > proj.min()["litelvlm"]
    cfg = json.loads((tmp_path / "config.json").read_text())
    assert cfg["torch"] == torch.__version__ and cfg["attn_implementations"] == ["sdpa"]
    assert cfg["dtype"] == "bfloat16" and cfg["device"] == "meta" and "gpu" in cfg
    assert cfg["command"].startswith("litelvlm efficiency --arch tiny")
    cmp = pd.read_csv(tmp_path / "comparison.csv")
    assert set(cmp["budget"]) == {64}
    fastv = cmp[cmp["method"] == "fastv"]
    # the paper's GLaMM-7B numbers sit beside rows of its architecture only: never beside the tiny model's
    paper_cols = [c for c in cmp if c.endswith("_paper") or c == "paper_tb"]
    assert len(paper_cols) == 6 and cmp[paper_cols].isna().all().all()
    assert fastv["setting"].str.startswith("K=2, R=88.9%").all()
    tables = markdown_tables((tmp_path / "comparison.md").read_text())
    # the short view; every column in the csv
    assert tables and all(len(header) <= 10 for header, _ in tables)
    assert not any("paper" in c for header, _ in tables for c in header)
    assert "glamm-7b" in (tmp_path / "comparison.md").read_text()


def test_cli_rejects_bad_arguments(tmp_path):
    with pytest.raises(LiteLVLMError, match="--budgets"):
        checked_scope(EfficiencyArgs(out=str(tmp_path), arch="tiny", budgets=["700"]))
    with pytest.raises(LiteLVLMError, match="glamm-7b on a CPU"):
        checked_scope(EfficiencyArgs(out=str(tmp_path), arch="glamm-7b", device="cpu"))
    with pytest.raises(LiteLVLMError, match="oracle"):
        checked_scope(EfficiencyArgs(out=str(tmp_path), arch="tiny", methods=["llm-attention"],
                                     flops_only=True))


def test_cli_timing_tiny_on_cpu(tmp_path, capsys, monkeypatch):
    import os

    monkeypatch.setattr(os, "getloadavg", lambda: (64.0, 64.0, 64.0))  # a busy machine: the run records it
    rc = _cli(["--arch", "tiny", "--methods", "none", "litelvlm", "--budgets", "576", "64", "--attn", "sdpa",
               "--warmup", "0", "--repeats", "1", "--no-figures", "--verbose"], tmp_path)
    assert rc == 0
    df = pd.read_csv(tmp_path / "efficiency.csv")
    assert (df["prefill_ms"] > 0).all() and (df["llm_act_mb"] > 0).all() and df["llm_cuda_ms"].isna().all()
    base = df[df["method"] == "none"].iloc[0]
    assert base["prefill_speedup"] == pytest.approx(1.0)
    row = df[(df["method"] == "litelvlm") & (df["budget"] == 64)].iloc[0]
    assert row["act_reduction"] > 2  # 84 vs 596 tokens
    # the paper's prefill (the decoder-layer loop only) lies inside the project's prefill (which adds the norm
    # and the LM head); this project's reading of the CUDA time is the whole pipeline
    assert ((df["paper_prefill_ms"] > 0) & (df["paper_prefill_ms"] < df["prefill_ms"])).all()
    assert (df["cuda_time_reading_ms"] == df["e2e_ms"]).all() and "paper_def_prefill_speedup" in df
    # the paper's storing activation, with the element size of the dtype --dtype auto chose on this CPU (L706:
    # hidden_states.element_size())
    size = 4 if json.loads((tmp_path / "config.json").read_text())["dtype"] == "float32" else 2
    assert row["paper_activation_gib"] == pytest.approx(4 * 84 * (2 * 64 + 128) * size / 2 ** 30)
    # the terminal names the paper's quantities as the paper's, and the CUDA time as this project's reading
    screen = capsys.readouterr().out
    assert ("On the paper's definitions" in screen
            and "prefill ms (paper's definition: decoder-layer loop)" in screen)
    assert "CUDA" not in screen  # CUDA-only quantities only on CUDA
    assert "the paper's own" not in screen  # the paper's 7B numbers only beside full-size rows
    tables = markdown_tables((tmp_path / "comparison.md").read_text())
    assert all(len(header) <= 10 and not any("cuda" in c or "paper" in c for c in header) for header,
               _ in tables)
    # the busy machine's warning travels: recorded in config.json, said first in comparison.md
    busy = json.loads((tmp_path / "config.json").read_text())["busy"]
    assert busy.startswith("the machine was busy while timing")
    assert (tmp_path / "comparison.md").read_text().startswith(f"> **TIMES UNRELIABLE: {busy}.**")


#: the methods of the full-size FLOPs-only run: every CLIP-side method has LiteLVLM's LLM sequence, so the
#: default suite counts LiteLVLM and the LLM-side FastV and SparseVLM (ToMe: the slow test below)
GLAMM7B_METHODS = {True: "none,litelvlm,fastv,sparsevlm",
                   False: "none,litelvlm,vispruner,visionzip,prumerge,divprune,fastv,dart,sparsevlm"}


def _glamm7b_flops_only(out: Path, light: bool) -> tuple[str, str]:
    """``efficiency --arch glamm-7b --flops-only`` into ``out``, its screen (stdout, stderr). ``light``: SDPA
    at K = 192 and 64, and the default command's way there (no ``--arch``, no ``--flops-only``: the default
    glamm-7b on the default CPU is counted as with ``--flops-only``)."""
    # every attention and budget: slow
    subset = ["--attn", "sdpa", "--budgets", "192", "64"] if light else ["--arch", "glamm-7b", "--flops-only"]
    screen, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(screen), contextlib.redirect_stderr(err):
        assert _cli(["--no-figures", "--methods", GLAMM7B_METHODS[light], *subset, "-v"], out) == 0
    return screen.getvalue(), err.getvalue()


def _keep_glamm7b_light(folder: Path) -> None:
    """The light full-size FLOPs-only run in ``folder / "run"``, its stdout and stderr beside it."""
    screen, err = _glamm7b_flops_only(folder / "run", True)
    (folder / "stdout.txt").write_text(screen)
    (folder / "stderr.txt").write_text(err)


@pytest.fixture(scope="module")
def glamm7b_light(session_folders) -> tuple[Path, str, str]:
    """The light full-size FLOPs-only run (its folder, stdout and stderr), made once per test session (the
    xdist workers share it) for the tests that read it."""
    folder = session_folders("efficiency-glamm7b-light", _keep_glamm7b_light)
    return folder / "run", (folder / "stdout.txt").read_text(), (folder / "stderr.txt").read_text()


@pytest.mark.parametrize("light", [True, pytest.param(False, marks=pytest.mark.slow)],
                         ids=["sdpa-192-64", "all"])
def test_cli_flops_only_glamm7b(tmp_path, light, request):
    if light:
        tmp_path, screen, _ = request.getfixturevalue("glamm7b_light")
    else:
        screen = _glamm7b_flops_only(tmp_path, False)[0]
    # FLOPs-only: the analytic quantities, no time column (--verbose)
    assert "TFLOPs (paper's definition)" in screen and "storing activation GiB (paper's definition)" in screen
    assert "decoder-layer loop" not in screen and "the paper's own: litelvlm" in screen
    # comparison.md: the paper's quantities beside the paper's numbers (its architecture), a short table
    (header, body), *_ = markdown_tables((tmp_path / "comparison.md").read_text())  # one table per kernel
    assert len(header) <= 10 and {"flops_ratio_paper", "paper_def_flops_ratio"} <= set(header)
    assert "2.21" in dict(zip(header, next(r for r in body if r[:2] == ["litelvlm", "192"])))[
        "flops_ratio_paper"]
    df = pd.read_csv(tmp_path / "efficiency.csv")
    assert len(df) == (1 + 3 * 2 if light else 2 * (1 + 8 * 5))
    check_measured_column(df, arch_name="glamm-7b")


def test_every_pruning_method_is_counted_on_its_own_schedule(tmp_path):
    """FLOPs-only on the tiny GLaMM for the whole comparison set: the LLM-side methods on their stages."""
    from litelvlm.cli import main

    out = tmp_path / "eff"
    assert main(
        ["efficiency", "--arch", "tiny", "--flops-only", "--no-figures", "--attn", "sdpa", "--budgets", "64",
                 "--methods", "none,litelvlm,prumerge,prumerge+,tome,divprune,fastv,dart,sparsevlm",
                 "--out", str(out)]) == 0
    df = pd.read_csv(out / "efficiency.csv").set_index("method")
    first = df.loc["none", "n_tokens"]
    assert (df.loc[["fastv", "dart", "sparsevlm"], "n_tokens_first_layers"] == first).all()
    assert (df.loc[["fastv", "dart", "sparsevlm"], "prune_layer"] > 0).all()
    assert df.loc["divprune", "prune_layer"] == 0 and df.loc["divprune", "selector_tflops"] > 0
    assert df.loc["sparsevlm", "n_tokens"] < df.loc["none", "n_tokens"]
    rel = (df["llm_tflops_measured"] / df["llm_tflops_analytic"] - 1).drop("fastv")
    assert rel.abs().max() < 1e-2


@pytest.mark.slow
def test_cli_flops_only_glamm7b_tome(tmp_path):
    """ToMe's selector FLOPs re-run the full-size vision blocks on real tensors (minutes on a CPU)."""
    assert _cli(
        ["--arch", "glamm-7b", "--flops-only", "--no-figures", "--methods", "tome", "--budgets", "64"],
                tmp_path) == 0
    df = pd.read_csv(tmp_path / "efficiency.csv")
    assert (df["selector_tflops"] > 0).all()


def _official_prompt_token_counts(shared) -> list[int]:
    """Text tokens of the official prompt (seed 0) for every RefCOCO val image."""
    from litelvlm.glamm.prompts import IMAGE_PLACEHOLDER
    from litelvlm.glamm.protocol import official_prompt
    from litelvlm.glamm.tokenizer import load_tokenizer

    tok = load_tokenizer(shared / "glamm_refseg_tokenizer")
    by_image: dict[str, list[str]] = {}
    for item in json.loads((shared / "refcoco_unc_expressions" / "val.json").read_text())["items"]:
        by_image.setdefault(item["image"], []).append(item["text"])
    counts = []
    for image, sentences in by_image.items():
        image_id = int(image.rsplit("_", 1)[-1].split(".")[0])
        ids = official_prompt(tok, sentences, seed=0, image_id=image_id)[1].tolist()
        assert ids.index(IMAGE_PLACEHOLDER) == OFFICIAL_PREFIX_TOKENS
        counts.append(len(ids) - 1)
    return counts


@pytest.mark.slow  # tokenizes 1,500 official prompts
def test_default_prompt_length_is_the_official_prompts(shared_data):
    if not (shared_data / "glamm_refseg_tokenizer").exists():
        pytest.skip("the GLaMM-RefSeg tokenizer is not in the shared data")
    counts = _official_prompt_token_counts(shared_data)
    assert len(counts) == 1500
    assert int(statistics.median(counts)) == OFFICIAL_PROMPT_TOKENS
    arch = get_arch("glamm-7b")
    assert (arch.text_tokens, arch.prefix_tokens) == (OFFICIAL_PROMPT_TOKENS, OFFICIAL_PREFIX_TOKENS)


def test_official_prompt_length_gives_the_papers_flops():
    # with 129 text tokens the LLM's SwiGLU MACs come to 4.70 / 2.11 / 1.26 T (paper: 4.66 / 2.11 / 1.27)
    g = get_arch("glamm-7b").glamm
    tmacs = {b: llm_macs_swiglu(g, TokenPlan.uniform(OFFICIAL_PROMPT_TOKENS + b)) / 1e12
             for b in PAPER_TFLOPS}
    assert {b: round(v, 2) for b, v in tmacs.items()} == {576: 4.70, 192: 2.11, 64: 1.26}
    for b, v in PAPER_TFLOPS.items():
        assert tmacs[b] == pytest.approx(v, rel=0.01)
    for b in (192, 64):  # the baseline / pruned ratios within 2% of the paper's
        assert tmacs[576] / tmacs[b] == pytest.approx(PAPER_TFLOPS[576] / PAPER_TFLOPS[b], rel=0.02)
    # the 64-token default used before flattered the ratios (5.10x at 64 against the paper's 3.67x)
    short = {b: llm_macs_swiglu(g, TokenPlan.uniform(64 + b)) for b in (576, 64)}
    assert short[576] / short[64] > 1.3 * PAPER_TFLOPS[576] / PAPER_TFLOPS[64]


@pytest.fixture(scope="module")
def glamm7b_rows(glamm7b_light):
    """The rows of the light full-size run, as ``efficiency.csv`` holds them (with their ratios)."""
    return pd.read_csv(glamm7b_light[0] / "efficiency.csv")


@pytest.mark.parametrize("plot", ["plot_flops_vs_budget", "plot_memory_vs_budget"])
def test_efficiency_figures_paper_stars_and_legend(plot, glamm7b_rows):
    """Our rows on the paper's definitions; the paper's stars at its budgets beside full-size rows only;
    the legend outside the axes (a frameless legend inside would put a star handle among the data)."""
    import matplotlib.pyplot as plt

    from analysis.efficiency import plots as figs

    full = glamm7b_rows
    fig, ax = getattr(figs, plot)(full)
    stars = [c.get_offsets().tolist() for c in ax.collections]
    assert len(stars) == 1 and sorted(x for x, _ in stars[0]) == [64, 192]
    from analysis.common.presentation.style import method_label

    lite = next(line for line in ax.get_lines() if line.get_label() == method_label("litelvlm"))
    col = "paper_tflops" if plot == "plot_flops_vs_budget" else "paper_act_reduction"
    rows = full[full["method"] == "litelvlm"].sort_values("budget")
    base = float(full.loc[full["method"] == "none", "paper_tflops"].iloc[0])
    expect = rows[col] / base if col == "paper_tflops" else rows[col]
    assert list(lite.get_ydata()) == pytest.approx(list(expect))
    fig.canvas.draw()
    legend, axes = ax.get_legend().get_window_extent(), ax.get_window_extent()
    assert legend.x0 >= axes.x1
    plt.close(fig)
    tiny = full.assign(arch="tiny")
    fig, ax = getattr(figs, plot)(tiny)
    assert not ax.collections  # no 7B star on a smaller model's curves
    plt.close(fig)


def test_the_default_command_counts_instead_of_refusing(glamm7b_light):
    """`litelvlm efficiency` with its defaults (glamm-7b, cpu) counts FLOPs and memory, saying why it does not
    time (the light full-size run is that command: no ``--arch``, no ``--flops-only``)."""
    out, _, err = glamm7b_light
    assert "not timed on a CPU; counting its FLOPs" in err
    df = pd.read_csv(out / "efficiency.csv")
    assert {"none", "litelvlm"} <= set(df["method"]) and 192 in set(df["budget"])
    assert df["llm_tflops_analytic"].notna().all()


#: the methods of the tiny rows drawn by test_efficiency_figures_show_every_method
FIGURE_METHODS = ("litelvlm", "vispruner", "visionzip", "prumerge", "random", "fastv", "dart")


def _count_figure_rows(folder: Path) -> None:
    """The tiny GLaMM's counted rows of :data:`FIGURE_METHODS` at 192 and 64 (with ``none``), with their
    ratios, pickled into ``folder``."""
    from analysis.efficiency.compare import add_ratios
    from analysis.efficiency.count import flops_rows

    pairs = [("none", 576)] + [(m, b) for m in FIGURE_METHODS for b in (192, 64)]
    add_ratios(flops_rows(get_arch("tiny"), pairs, ["sdpa"], torch.float32, 2), ["attn"]).to_pickle(
        folder / "rows.pkl")


@pytest.fixture(scope="module")
def tiny_figure_rows(session_folders) -> pd.DataFrame:
    """The rows of :func:`_count_figure_rows`, counted once per test session (the xdist workers share them)
    for every figure drawn from them."""
    return pd.read_pickle(session_folders("efficiency-tiny-figure-rows", _count_figure_rows) / "rows.pkl")


@pytest.mark.parametrize("plot", ["plot_flops_vs_budget", "plot_memory_vs_budget", "plot_prefill_vs_budget"])
def test_efficiency_figures_show_every_method(plot, tiny_figure_rows):
    """Methods with equal values (every CLIP-side method has LiteLVLM's FLOPs at a budget) are drawn once,
    their legend entry naming each (``a = b``), other equal points side by side, so no line hides another;
    every legend entry names a drawn line; the ticks stay at the budgets."""
    import matplotlib.pyplot as plt

    from analysis.efficiency import plots as figs
    from tests.figure_checks import hidden_lines, legend_without_artist

    methods, df = FIGURE_METHODS, tiny_figure_rows.copy()
    # a prefill column with equal values too (as in a timed run): the ratio of token counts
    df = df.assign(prefill_speedup=df["n_tokens"].max() / df["n_tokens"], device="CPU (test)")
    fig, ax = getattr(figs, plot)(df)
    names = [n.rstrip("‡") for t in ax.get_legend().get_texts()
             for n in t.get_text().replace("\n", " = ").split(" = ")]
    lines = {"plot_prefill_vs_budget": ["FLOPs-ideal (CLIP-side pruning)"],
             "plot_memory_vs_budget": ["token-count ratio (linear in n)"]}.get(plot, [])
    assert sorted(names) == sorted([*methods, *lines])  # every method, once
    assert legend_without_artist(ax) == [] and hidden_lines(ax) == []
    assert sorted(ax.get_xticks()) == [64, 192, 576] and "drawn once" in ax.get_xlabel()
    plt.close(fig)


def test_comparison_views_show_cuda_times_only_on_cuda():
    """comparison.md's view and the terminal summary show the CUDA time only for rows timed on a CUDA
    device."""
    from analysis.efficiency.compare import CUDA_COLUMNS, on_cuda, short_comparison

    cmp = pd.DataFrame(
        {"method": ["litelvlm"], "budget": [192], "flops_ratio": [2.0], "prefill_speedup": [1.5],
                        "cuda_speedup": [1.4], "cuda_time_reading_speedup": [1.3],
                        "cuda_speedup_paper": [1.28],
                        "paper_def_flops_ratio": [2.2], "flops_ratio_paper": [2.21]})
    assert on_cuda(pd.DataFrame({"device": ["NVIDIA H100 80GB HBM3"]}))
    assert not on_cuda(pd.DataFrame({"device": ["CPU (x86_64, 1 threads)"]})) and not on_cuda(pd.DataFrame())
    for paper in (False, True):
        assert not set(short_comparison(cmp, paper, cuda=False).columns) & set(CUDA_COLUMNS)
        assert set(short_comparison(cmp, paper, cuda=True).columns) & set(CUDA_COLUMNS)
    # the paper's only beside glamm-7b
    assert "flops_ratio_paper" not in short_comparison(cmp, False, cuda=True)


#: a fresh interpreter runs each command line and says its exit status, its error line and whether torch
#: loaded
BEFORE_TORCH = """
import contextlib, io, json, sys
from litelvlm.cli import main
out = []
for argv in json.loads(sys.argv[1]):
    err = io.StringIO()
    with contextlib.redirect_stderr(err):
        rc = main(argv)
    out.append({"rc": rc, "err": err.getvalue().strip().splitlines()[-1], "torch": "torch" in sys.modules})
print(json.dumps(out))
"""


def parse_refusals(argvs: list[list[str]]) -> list[dict]:
    """What each command line gives in a fresh interpreter (:data:`BEFORE_TORCH`)."""
    import subprocess
    import sys

    done = subprocess.run([sys.executable, "-c", BEFORE_TORCH, json.dumps(argvs)], capture_output=True,
                          text=True, timeout=120, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


BAD_BUDGETS = ["0", "x", "all", "64,-1"]


@pytest.fixture(scope="module")
def budget_refusals(tmp_path_factory) -> dict[str, tuple[dict, Path]]:
    """Each of :data:`BAD_BUDGETS` refused in one fresh interpreter (one after another): what it gave, and
    its ``--out``."""
    outs = {b: tmp_path_factory.mktemp("refused") / "out" for b in BAD_BUDGETS}
    got = parse_refusals([["efficiency", "--arch", "tiny", "--budgets", b, "--out", str(outs[b])]
                          for b in BAD_BUDGETS])
    return {b: (g, outs[b]) for b, g in zip(BAD_BUDGETS, got, strict=True)}


@pytest.mark.parametrize("budgets", BAD_BUDGETS)
def test_bad_budget_is_refused_at_parsing_before_torch(budget_refusals, budgets):
    """``efficiency --budgets 0 / x / all``: exit 2 at parsing, one line naming --budgets and the value, no
    torch."""
    got, out = budget_refusals[budgets]
    assert got["rc"] == 2 and not got["torch"] and "argument --budgets" in got["err"], got
    assert (repr(budgets.split(",")[-1]) in got["err"]) or "'all'" in got["err"], got
    assert not out.exists()


def test_budget_above_a_fixed_grid_names_budgets(tmp_path, capsys):
    """A budget above a fixed grid's N (the tiny GLaMM's 576 patches): exit 2 naming --budgets, nothing
    written."""
    assert _cli(["--arch", "tiny", "--flops-only", "--budgets", "64", "999", "--no-figures"],
                tmp_path / "x") == 2
    err = capsys.readouterr().err
    assert "--budgets" in err and "999" in err and "576" in err
    assert not (tmp_path / "x").exists()


@pytest.mark.parametrize(("arch", "n"), [("tiny", 576), ("unipixel-tiny", None)])
def test_runs_reach_the_family_as_budgets(tmp_path, monkeypatch, arch, n):
    """The (method, budget) runs reach the family's cost description (``rows``) as Budgets, the baseline's at
    N (a fixed grid) or ``Budget.ALL`` (N depends on the image); the tables and config.json hold the counted
    ints."""
    from analysis.efficiency.arch import cost_of
    from litelvlm.budget import Budget
    from litelvlm.cost import FamilyCost

    cost = cost_of(get_arch(arch))
    seen = []

    def spy(arch_, runs, method_args):
        seen.extend(runs)
        return FamilyCost.rows(cost, arch_, runs, method_args)

    monkeypatch.setattr(cost, "rows", spy)
    assert _cli(["--arch", arch, "--flops-only", "--methods", "none", "litelvlm", "--budgets", "64", "16",
                 "--attn", "sdpa", "--no-figures"], tmp_path) == 0
    assert seen == [("none", Budget.ALL if n is None else Budget(n)), ("litelvlm", Budget(64)),
                    ("litelvlm", Budget(16))]
    config = json.loads((tmp_path / "config.json").read_text())
    full = get_arch(arch).num_patches
    assert config["budgets"] == [64, 16] and config["pairs"] == [["none", full], ["litelvlm", 64],
                                                                 ["litelvlm", 16]]
    assert "--budgets 64 16 " in config["command"]
    assert sorted(pd.read_csv(tmp_path / "efficiency.csv")["budget"].unique()) == [16, 64, full]
