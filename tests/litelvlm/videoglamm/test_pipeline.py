"""VideoGLaMM as the ``videoglamm`` family (``litelvlm.videoglamm.pipeline``), tiny random weights on a
synthetic clip.

Checked: the registry and the contract; ``none`` is the ported inference (``segment_clip``, itself
transcription-tested in tests/litelvlm/test_videoglamm.py) to the bit; the shared layer's attention rows and
layer-by-layer forward are Phi-3's own (fused ``qkv_proj``, its sliding window, on a small Phi-3 whose window
is shorter than its sequence); the per-frame budget's LLM-side reading (the kept fraction of the 3328 visual
tokens); LLM-side and CLIP-side methods at the paper's per-frame budgets, the CLIP-side path equal to
``prune_clip`` + ``segment_clip`` (eval-video grounds through ``ground_many``); a budget of all 576 with
nothing pruned equals ``none``; the methods the family refuses, by name; the generated answer.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from litelvlm.errors import LiteLVLMError
from litelvlm.lvlm.family import GroundingPipeline
from litelvlm.registry.families import family_of, get_family, load_pipeline

MODEL = "videoglamm-tiny-random:0"


@pytest.fixture(scope="module")
def video(tmp_path_factory):
    from litelvlm.video.datasets import load_ref_davis
    from litelvlm.video.synthetic import write_synthetic_videos

    root = write_synthetic_videos(tmp_path_factory.mktemp("vf") / "syn", videos=1, frames=3, size=(40, 32),
                                  seed=0)
    rec = load_ref_davis(root)[0]
    return [np.asarray(rec.frame(i)) for i in range(len(rec.frames))], rec.sentence


@pytest.fixture(scope="module")
def pipe():
    return load_pipeline(MODEL)


@pytest.fixture(scope="module")
def prep(pipe, video):
    frames, sentence = video
    return pipe.prepare(frames, [sentence])


@pytest.fixture(scope="module")
def none_out(pipe, prep):
    with torch.no_grad():
        return pipe.ground(prep, "none")


def test_registered_family_implements_the_contract(pipe):
    from litelvlm.videoglamm.pipeline import VideoGLaMMPipeline

    assert family_of(MODEL) == family_of("videoglamm-random:3") == "videoglamm"
    assert get_family("videoglamm") is VideoGLaMMPipeline and type(pipe) is VideoGLaMMPipeline
    assert GroundingPipeline.__abstractmethods__ and not VideoGLaMMPipeline.__abstractmethods__
    for name in GroundingPipeline.__abstractmethods__:
        assert vars(VideoGLaMMPipeline).get(name) is not None, name
    ab = pipe.abilities
    assert (ab.budget_unit, ab.sentences_per_prompt, ab.position_axes,
            ab.seg_reads) == ("frame", 1, 1, "final")
    assert ab.answers == ("teacher-forced", "generate") and pipe.max_new_tokens == 512
    assert pipe.num_visual_tokens == 3328 and pipe.describe()["family"] == "videoglamm"


def test_none_is_the_ported_inference(pipe, prep, none_out, video):
    """``ground(none)``: segment_clip's logits (T, S, H, W) as (S, T, H, W), bit-equal; the layout's rows."""
    from litelvlm.videoglamm.inference import segment_clip

    frames, sentence = video
    ref = segment_clip(pipe.model, pipe.tokenizer, prep.clip, sentence)
    assert none_out.mask_logits.shape == (1, 3, 32, 40) == none_out.masks.shape
    assert torch.equal(none_out.mask_logits, ref.logits.permute(1, 0, 2, 3))
    assert pipe.mask_shape(prep) == (3, 32, 40) and none_out.budget == 576 and pipe.full_budget(prep) == 576
    lay = pipe.layout(prep, 3328)
    # longer than Phi-3's window
    assert lay.seq_len == none_out.seq_len == len(prep.input_ids) - 16 + 3328 > 2048
    assert torch.equal(lay.position_ids, torch.arange(lay.seq_len)[None])
    seg = pipe.model.seg_rows(ref.input_ids, 3328, pipe.seg_token_id)
    assert torch.equal(none_out.seg_positions.cpu(), seg) and pipe.keeps_everything(prep, none_out)
    embeds = pipe.sequence_embeds(prep, pipe.visual_tokens(prep))
    assert torch.equal(embeds, pipe.model.sequence_embeds(ref.input_ids, prep.clip.tokens.visual))


def test_shared_layer_runs_phi3_with_its_window():
    """The shared layer's attention rows (``attention_rows_at``: Phi-3's fused ``qkv_proj``) are Phi-3's eager
    attention weights with its sliding window, and its layer-by-layer run (``run_layers``) is the model's own
    forward, on a sequence longer than the window (VideoGLaMM's ~3420-token prompt against its 2048 keys, here
    40 against 9)."""
    from transformers import Phi3Config, Phi3Model

    from litelvlm.llm.context import attention_rows_at, run_layers

    torch.manual_seed(0)
    cfg = Phi3Config(vocab_size=50, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                     num_attention_heads=4,
                     num_key_value_heads=2, sliding_window=9, attn_implementation="eager", pad_token_id=0)
    lm = Phi3Model(cfg).eval()
    embeds = torch.randn(1, 40, 32)
    pos = torch.arange(40)[None]
    with torch.no_grad():
        out = lm(inputs_embeds=embeds, output_attentions=True, use_cache=False)
        h1 = run_layers(lm, embeds, pos, 0, 1)
        rows = attention_rows_at(lm, 1, h1, pos, torch.tensor([5, 39]))
        final = lm.norm(run_layers(lm, h1, pos, 1))
    official = out.attentions[1][0][:, [5, 39]]
    assert torch.allclose(rows, official, atol=1e-6, rtol=0)
    assert float(rows[:, 1, :31].abs().max()) == 0.0 and float(rows[:, 1, 31:].min()) > 0  # 9 keys: 31..39
    assert torch.allclose(final, out.last_hidden_state, atol=1e-5, rtol=0)
    assert pipe_window() == 2048


def pipe_window() -> int:
    """The tiny VideoGLaMM's Phi-3 window: transformers 4.41's 2048 visible keys (config 2047 + 1)."""
    from litelvlm.videoglamm.config import PRESETS
    from litelvlm.videoglamm.hf_config import phi3_config

    return int(phi3_config(PRESETS["tiny"]).sliding_window)


def test_per_frame_budget_is_the_kept_fraction_for_llm_side_methods(pipe):
    ks = [pipe.llm_budget(k) for k in range(1, 577)]
    assert (pipe.llm_budget(196), pipe.llm_budget(81), pipe.llm_budget(576),
            pipe.llm_budget(1)) == (1132, 468, 3328, 6)
    assert ks == sorted(set(ks))  # one LLM budget per per-frame budget, increasing


def test_llm_side_methods_at_the_papers_budgets(pipe, prep, none_out):
    text = none_out.seq_len - 3328
    with torch.no_grad():
        div = pipe.ground(prep, "divprune", 81)
        assert div.seq_len == text + 468 and div.budget == 81 and div.masks.shape == (1, 3, 32, 40)
        fastv = pipe.ground(prep, "fastv", 81, layer=1)
    assert fastv.prune_layer == 1 and fastv.seq_len == text + 468 and len(fastv.kept_indices) == 468


def test_clip_side_methods_prune_each_frame(pipe, prep, none_out, video):
    """LiteLVLM at 81 a frame through ``ground`` equals prune_clip, then the ported inference on its visual
    input."""
    from litelvlm.videoglamm.inference import segment_clip
    from litelvlm.videoglamm.pruning import prune_clip

    frames, sentence = video
    with torch.no_grad():
        # the trace (trace_context) and text (clip_text_trace) made once
        out = pipe.ground(prep, "litelvlm", 81)
        vis = prune_clip(pipe.model, prep.clip, prep.trace(), prep.text(), "litelvlm", 81)
        ref = segment_clip(pipe.model, pipe.tokenizer, prep.clip, sentence, visual=vis.visual)
    assert torch.equal(out.mask_logits, ref.logits.permute(1, 0, 2, 3)) and out.seq_len == none_out.seq_len
    idx = out.kept_indices
    assert len(idx) == 16 * 81 and all(0 <= int(i) - 576 * f < 576 for f in range(16)
                                       for i in idx[f * 81:(f + 1) * 81])
    assert not pipe.keeps_everything(prep, out)


@pytest.mark.slow
def test_every_offered_method_at_the_papers_budgets(pipe, prep, none_out):
    """Every method the family offers at 196 and 81 a frame, and at 576: a method keeping everything in order
    equals ``none`` (SparseVLM is offered but its three stages need more than the tiny model's 2 layers)."""
    from litelvlm.methods import available_methods

    offered = [m for m in available_methods() if pipe.method_error(m) is None and m != "none"]
    assert {"fastv", "dart", "divprune", "ivc-prune", "sparsevlm", "litelvlm", "vispruner",
            "tome"} <= set(offered)
    with torch.no_grad():
        for m in (m for m in offered if m != "sparsevlm"):
            for k in (196, 81, 576):
                out = pipe.ground(prep, m, k)
                assert out.masks.shape == (1, 3, 32, 40) and out.budget == k
                if k == 576 and pipe.keeps_everything(prep, out):
                    assert torch.equal(out.mask_logits, none_out.mask_logits), m


def test_what_the_family_refuses(pipe, prep):
    for method in ("cdpruner", "vscan"):
        assert "reads one image's CLIP trace" in pipe.method_error(method)
        with pytest.raises(LiteLVLMError, match="no CLIP patch map"):
            pipe.ground(prep, method, 81)
    with pytest.raises(LiteLVLMError, match="no original position"):
        pipe.ground(prep, "random", 81, positions="keep")
    with pytest.raises(LiteLVLMError, match="1 <= K <= 576"):
        pipe.ground(prep, "divprune", 577)
    with pytest.raises(LiteLVLMError, match="one expression per prompt"):
        pipe.with_sentences(prep, ["a", "b"])
    with pytest.raises(LiteLVLMError, match="not one image"):
        pipe.prepare_image(__import__("PIL.Image").Image.new("RGB", (32, 32)))
    with pytest.raises(LiteLVLMError, match="one clip of 1..64 frames"):
        pipe.prepare_image([np.zeros((32, 32, 3), np.uint8)] * 65)


def test_generated_answer(pipe, prep, video):
    """``answer="generate"``: greedy decoding after the pruned prefill (KV cache), the ids of the ported
    ``greedy_answer`` (the whole sequence recomputed each step); no [SEG], no mask: one all-zero (T, H, W)."""
    from litelvlm.videoglamm.inference import greedy_answer

    frames, sentence = video
    gen = pipe.with_sentences(prep, [sentence], answer="generate")
    pipe.max_new_tokens = 3
    try:
        with torch.no_grad():
            out = pipe.ground(gen, "divprune", 81)
            vis = pipe.visual_tokens(gen)[out.kept_indices]
            ids = greedy_answer(pipe.model, gen.input_ids[None], vis, (pipe.tokenizer.eos_token_id,), 3)
    finally:
        pipe.max_new_tokens = 512
    assert out.generated.tolist() == ids[0, len(gen.input_ids):].tolist()
    assert out.masks.shape == (1, 3, 32, 40)
    if pipe.seg_token_id not in out.generated.tolist():
        assert not out.masks.any()


def test_sam2_video_branch_option(pipe, video, none_out):
    """``sam2_video_branch=True`` (the official ``--use_sam2_video_branch``): the family's masks are
    ``segment_clip(..., sam2_video_branch=True)``'s (SAM 2's memory from frame 0, tested against the official
    orchestration in tests/litelvlm/videoglamm/test_sam2_video.py), for ``none`` and a pruned run alike; they
    differ from the frame-wise masks of the same weights (the module's ``none``, ``segment_clip``'s own)."""
    from litelvlm.videoglamm.inference import segment_clip

    frames, sentence = video
    branch = load_pipeline(MODEL, sam2_video_branch=True)
    assert branch.describe()["sam2_video_branch"] is True
    assert "sam2_video_branch" not in pipe.describe()   # ``pipe``: load_pipeline(MODEL)
    weights, same = branch.model.state_dict(), pipe.model.state_dict()
    assert weights.keys() == same.keys() and all(torch.equal(weights[k], same[k]) for k in weights)
    prep = branch.prepare(frames, [sentence])
    with torch.no_grad():
        out = branch.ground(prep, "none")
        ref = segment_clip(branch.model, branch.tokenizer, prep.clip, sentence, sam2_video_branch=True)
        pruned = branch.ground(prep, "fastv", 81)
    assert out.mask_logits.shape == (1, len(frames), *frames[0].shape[:2])
    assert torch.equal(out.mask_logits, ref.logits.transpose(0, 1))
    assert not torch.equal(out.mask_logits, none_out.mask_logits)
    assert pruned.mask_logits.shape == out.mask_logits.shape


def test_captured_prefill_runs_ground_and_segment_clip_captured(pipe, prep, none_out):
    """``--prefill captured`` (dynamo's eager backend on a CPU): ``ground(none)`` (the contract's
    ``final_hidden``) and ``segment_clip`` (the model's own ``final_hidden``: eval-video, the generated
    answer, the efficiency prefill) each run every Phi-3 layer captured, with its sliding window, and give the
    eager masks exactly and the eager logits within bfloat16 rounding (more methods: the slow test below)."""
    from litelvlm.llm.captured import install, uninstall
    from litelvlm.videoglamm.inference import segment_clip

    torch._dynamo.reset()
    runner = install(pipe.language_model, "compile", backend="eager")
    try:
        with torch.no_grad():
            out = pipe.ground(prep, "none")
            clip = segment_clip(pipe.model, pipe.tokenizer, prep.clip, prep.sentences[0])
    finally:
        uninstall(pipe.language_model)
        torch._dynamo.reset()
    assert runner.counts == {"captured": 2 * len(pipe.language_model.layers)} and not runner.eager
    for got in (out.mask_logits, clip.logits.transpose(0, 1)):
        assert torch.equal(got > 0, none_out.masks)
        torch.testing.assert_close(got, none_out.mask_logits, rtol=2e-2, atol=2e-2)  # bfloat16's rounding
    assert out.seq_len == none_out.seq_len > 2048  # past the tiny Phi-3's 2048-token window


@pytest.mark.slow
def test_captured_prefill_of_methods_and_the_efficiency_prefill(pipe, prep):
    """``--prefill captured``: FastV in two segments (the layers before and after its layer, on the kept
    tokens), a per-frame CLIP-side method, and the efficiency study's timed prefill
    (``TimedParts.run_prefill``: logits of every position) through the captured stack, with the eager masks
    and logits within bfloat16 rounding."""
    from litelvlm.llm.captured import install, uninstall
    from litelvlm.videoglamm.cost_timing import TimedParts

    parts = TimedParts.__new__(TimedParts)  # the timed prefill alone, on this pipeline's model
    parts.model, parts.preset, parts.device, parts.dtype = (pipe.model, pipe.model.preset, pipe.device,
                                                            pipe.dtype)
    runs = [("fastv", 81), ("litelvlm", 81)]
    with torch.no_grad():
        eager = {r: pipe.ground(prep, *r) for r in runs}
        logits = parts.run_prefill(40)
    layers = len(pipe.language_model.layers)
    torch._dynamo.reset()
    runner = install(pipe.language_model, "compile", backend="eager")
    try:
        with torch.no_grad():
            got = {r: pipe.ground(prep, *r) for r in runs}
            # FastV's pieces and the CLIP-side run
            assert runner.counts == {"captured": 2 * layers} and not runner.eager
            runner.reset_counts()
            captured_logits = parts.run_prefill(40)
            assert runner.counts == {"captured": layers}
    finally:
        uninstall(pipe.language_model)
        torch._dynamo.reset()
    for r in runs:
        assert torch.equal(got[r].masks, eager[r].masks), r
        torch.testing.assert_close(got[r].mask_logits, eager[r].mask_logits, rtol=2e-2, atol=2e-2)
    torch.testing.assert_close(captured_logits, logits, rtol=2e-2, atol=2e-2)
