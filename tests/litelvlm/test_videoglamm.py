"""VideoGLaMM on random weights: the official transcriptions (tests/official_videoglamm.py,
mbzuai-oryx/VideoGLaMM @6b15b1e), the checkpoint round trip, the real size on the meta device, and a 16-frame
synthetic video."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch

from litelvlm.errors import LiteLVLMError
from litelvlm.videoglamm import prompt as P
from litelvlm.videoglamm.checkpoint import (
    build_videoglamm,
    load_videoglamm,
    sam2_tracking_shapes,
    save_random_videoglamm,
    videoglamm_tensors,
)
from litelvlm.videoglamm.config import get_preset
from litelvlm.videoglamm.inference import prepare_clip, segment_clip
from litelvlm.videoglamm.internvideo2 import InternVideo2Tower
from litelvlm.videoglamm.model import VideoGLaMM, apply_adaptive_avg_pooling
from litelvlm.videoglamm.sam2_text import sam2_pixels
from litelvlm.videoglamm.tokenizer import build_phi3_tokenizer
from tests import official_videoglamm as off


@pytest.fixture(scope="module")
def tiny():
    model, extras = build_videoglamm("tiny", seed=0)
    return model, extras, build_phi3_tokenizer("tiny")


def test_pooling_matches_official_and_asserts_square():
    g = torch.Generator().manual_seed(0)
    for n, shape in ((576, (12, 12)), (256, (8, 8)), (49, (12, 12))):
        x = torch.randn(3, n, 5, generator=g)
        assert torch.equal(apply_adaptive_avg_pooling(x, shape), off.apply_adaptive_avg_pooling(x, shape))
    for fn in (apply_adaptive_avg_pooling, off.apply_adaptive_avg_pooling):
        with pytest.raises(AssertionError):
            fn(torch.zeros(1, 575, 4))


class _CharTokenizer:
    """Ids = code points (+ BOS 1 when ``bos``): exercises both branches of tokenizer_image_token."""

    def __init__(self, bos: bool) -> None:
        self.bos_token_id = 1
        self.bos = bos

    def __call__(self, text):
        ids = [ord(c) + 10 for c in text]
        return type("Enc", (), {"input_ids": ([1] if self.bos else []) + ids})()


@pytest.mark.parametrize("expression", ["A Man in red", "the dog", "Black SWAN swimming left"])
def test_prompt_matches_official(tiny, expression):
    tok = tiny[2]
    gen = off.ConvGenerator_VideoGPTPlus()
    expected = gen.apply_for_chat(off.referdavis_prompt(expression), type="video", tokenizer=tok)
    assert torch.equal(P.input_ids(tok, expression, answer=None), expected)
    assert (expected == off.IMAGE_TOKEN_INDEX).sum() == 16
    for bos in (True, False):
        char = _CharTokenizer(bos)
        text = P.prompt_text(P.question(expression))
        assert P.tokenizer_image_token(text, char) == off.tokenizer_image_token(text, char)


def test_frame_sampling_matches_official():
    for n in range(1, 70):
        assert P.sample_frames(n) == off.llm_frames(list(range(n)))


def test_sam2_preprocess_matches_official():
    rng = np.random.default_rng(0)
    for h, w in ((97, 131), (480, 854), (64, 64)):
        frame = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
        expected, _ = off.sam_preprocess(frame)
        assert torch.allclose(sam2_pixels(frame, 1024)[0], expected, atol=1e-5)


def test_internvideo2_matches_official():
    size = get_preset("tiny").internvideo
    ours = InternVideo2Tower(size)
    gen = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for t in ours.parameters():
            t.copy_(torch.randn(t.shape, generator=gen) * 0.3)
    ref = off.PretrainInternVideo2(size.img_size, size.patch_size, size.embed_dim, size.depth, size.num_heads,
                                   size.mlp_ratio, size.num_frames)
    ref.load_state_dict(ours.vision_encoder.state_dict(), strict=True)
    x = torch.randn(2, 4, 3, 224, 224, generator=gen)
    for dtype, tol in ((torch.float32, 1e-6), (torch.bfloat16, 0.0)):
        ours.to(dtype), ref.to(dtype)
        a, b = ours(x.to(dtype)), ref.stage2v_forward(x.to(dtype))
        assert a.shape == (2, 1 + 4 * 256, size.embed_dim)
        assert torch.allclose(a.float(), b.float(), atol=tol, rtol=0)


def test_towers_and_projection_match_official(tiny):
    model = tiny[0]
    p = model.preset
    gen = torch.Generator().manual_seed(2)
    frames, context = torch.randn(16, 3, 224, 224, generator=gen), torch.randn(16, 3, 336, 336, generator=gen)
    arch = off.OfficialArch(model.internvideo, lambda im, select_feature: model.clip_tokens(im),
                            model.mm_projector, model.image_mm_projector)
    arch.D = p.internvideo.embed_dim
    video, ctx = arch.encode_videos(frames, context, batch_size=1)
    expected = arch.project(video[0], ctx[0], input_type="video")[0]
    tokens = model.visual_tokens(frames, context)
    # the per-frame stream: 576 per frame
    assert tokens.clip.shape == (16, p.clip_tokens, p.clip_width)
    assert tokens.video.shape == (4, 4 * 256, p.internvideo.embed_dim)
    assert tokens.visual.shape == (p.visual_tokens, p.llm_hidden) == (3328, p.llm_hidden)
    assert torch.equal(tokens.visual, expected)


def test_seg_embedding_matches_official(tiny):
    model, _, tok = tiny
    ref = off.official_text_hidden_fcs(model.preset.llm_hidden, model.preset.out_dim)
    ref.load_state_dict(model.text_hidden_fcs.state_dict(), strict=True)
    ids = P.input_ids(tok, "the red circle", answer="It is [SEG]. And [SEG].")
    k = 300  # any visual length (a pruned stream); the full one is 3328
    visual = torch.randn(k, model.preset.llm_hidden, generator=torch.Generator().manual_seed(3))
    hidden = model.final_hidden(model.sequence_embeds(ids, visual))
    assert hidden.shape[1] == ids.shape[1] - 16 + k
    rows = model.seg_rows(ids, k, tok.convert_tokens_to_ids("[SEG]"))
    assert len(rows) == 2
    seg = tok.convert_tokens_to_ids("[SEG]")
    # teacher forcing: output_ids = ids; the last generate step's hidden states cover all but the last token
    expected = off.official_pred_embeddings(ref, ids, hidden[:, :-1], ids, hidden.shape[1], seg)
    assert torch.allclose(model.seg_embeddings(hidden, rows), expected, atol=1e-6, rtol=0)


@pytest.mark.parametrize("window", [3, 7])
def test_phi3_sliding_window_matches_transformers_441(window):
    """Our Phi-3 (transformers 5, config ``sliding_window + 1``) attends as transformers 4.41's eager Phi-3
    with the official ``sliding_window`` (the 4-D mask of ``_make_causal_mask``, transcribed)."""
    from dataclasses import replace

    from transformers import Phi3ForCausalLM

    from litelvlm.videoglamm.hf_config import phi3_config

    p = replace(get_preset("tiny"), sliding_window=window)
    torch.manual_seed(0)
    ours = Phi3ForCausalLM(phi3_config(p)).eval()
    cfg = phi3_config(p)
    cfg.sliding_window = None
    ref = Phi3ForCausalLM(cfg).eval()
    ref.load_state_dict(ours.state_dict())
    x = torch.randn(1, 4 * window + 3, p.llm_hidden)
    mask = off._make_causal_mask((1, x.shape[1]), torch.float32, x.device, sliding_window=window)
    with torch.no_grad():
        a = ours.model(inputs_embeds=x).last_hidden_state
        b = ref.model(inputs_embeds=x, attention_mask=mask).last_hidden_state
        c = ref.model(inputs_embeds=x).last_hidden_state                      # no window: differs
    assert torch.allclose(a, b, atol=1e-5, rtol=0)
    assert not torch.allclose(a[0, -1], c[0, -1], atol=1e-3)
    cfg.sliding_window = window                                               # transformers 5 read literally
    literal = Phi3ForCausalLM(cfg).eval()
    literal.load_state_dict(ours.state_dict())
    with torch.no_grad():
        d = literal.model(inputs_embeds=x).last_hidden_state
    assert not torch.allclose(d[0, -1], b[0, -1], atol=1e-3)                 # one key fewer


def test_checkpoint_round_trip(tiny, tmp_path, monkeypatch):
    monkeypatch.setenv("LITELVLM_CACHE", str(tmp_path / "cache"))
    model, extras, _ = tiny
    net, tok, cfg = load_videoglamm("videoglamm-tiny-random:0")
    written, loaded = videoglamm_tensors(model, extras), videoglamm_tensors(net, extras)
    assert written.keys() == loaded.keys() and all(torch.equal(written[k], loaded[k]) for k in written)
    assert cfg["architectures"] == ["VideoGLaMMForCausalLM"] and cfg["seg_token_idx"] == 411
    assert tok.convert_tokens_to_ids("[SEG]") == 411
    assert any(k.startswith("model.visual_model.memory_attention.") for k in written)
    assert "model.image_vision_tower.vision_tower.vision_model.embeddings.patch_embedding.weight" in written
    # a tensor of another layout fails by name
    folder = tmp_path / "bad"
    save_random_videoglamm(folder, "tiny", seed=0)
    from safetensors.torch import load_file, save_file

    sd = load_file(str(folder / "model.safetensors"))
    # the official InternVideo2 modules the inference never runs are accepted and left out
    sd["model.vision_tower.vision_proj.weight"] = torch.zeros(512, 16)
    sd["model.vision_tower.vision_encoder.clip_decoder.0.head.weight"] = torch.zeros(3200, 32)
    sd["model.vision_tower.vision_encoder.clip_img_pos_embed"] = torch.zeros(1, 257, 32)
    save_file(sd, str(folder / "model.safetensors"))
    assert load_videoglamm(str(folder))[2]["seg_token_idx"] == 411
    for key, value, message in (("model.unknown.weight", torch.zeros(2), "unknown: model.unknown.weight"),
                                ("model.norm.weight", torch.zeros(3), "wrong shape: llm.model.norm.weight")):
        bad = dict(sd, **{key: value})
        save_file(bad, str(folder / "model.safetensors"))
        with pytest.raises(LiteLVLMError, match=message):
            load_videoglamm(str(folder))
    save_file({k: v for k, v in sd.items() if k != "model.mm_projector.0.bias"},
              str(folder / "model.safetensors"))
    with pytest.raises(LiteLVLMError, match="missing: mm_projector.0.bias"):
        load_videoglamm(str(folder))
    cfg = json.loads((folder / "config.json").read_text())
    cfg["architectures"] = ["Other"]
    (folder / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(LiteLVLMError, match="VideoGLaMMForCausalLM"):
        load_videoglamm(str(folder))


def _internvideo2_1b_params() -> int:
    """PretrainInternVideo2-1B's parameters on the inference path, from internvideo2.py L698-723 by hand."""
    d, depth, mlp = 1408, 40, int(1408 * 48 / 11)
    block = d * 3 * d + d * d + d + 2 * d + 2 * d + 2 * d + (d * mlp + mlp) + (mlp * d + d)
    return (3 * 14 * 14 * d + d) + d + (1 + 4 * 256) * d + depth * block


def test_real_size_builds_on_meta_with_its_parameter_count():
    p = get_preset("videoglamm")
    with torch.device("meta"):
        m = VideoGLaMM(p)

    def n(mod):
        return sum(x.numel() for x in mod.parameters())
    # Phi-3-mini-4k-instruct: 3,821,079,552 with 32064 rows; 52 rows fewer after the resize to 32012
    assert n(m.llm) == 3_821_079_552 - 52 * 2 * 3072
    assert n(m.clip) == 303_507_456                      # CLIP ViT-L/14-336 vision tower
    assert n(m.internvideo) == _internvideo2_1b_params()
    tracking = sum(math.prod(s) for s in sam2_tracking_shapes(p).values())
    assert n(m.sam2.model) + tracking == 224_430_130     # sam2_hiera_large.pt (SAM 2.0 Hiera-L)
    assert n(m.mm_projector) == 1408 * 3072 + 3072 + 3072 * 3072 + 3072
    assert n(m.text_hidden_fcs) == 3072 * 3072 + 3072 + 3072 * 256 + 256
    assert m.sam2.model.mask_decoder.dynamic_multimask_via_stability
    assert p.visual_tokens == 3328 and p.clip_tokens == 576 and p.seg_token_id == 32011


def test_forward_on_synthetic_video_gives_a_mask_per_frame(tiny, tmp_path):
    from litelvlm.video.datasets import load_ref_davis
    from litelvlm.video.synthetic import write_synthetic_videos

    model, _, tok = tiny
    root = write_synthetic_videos(tmp_path / "davis", videos=1, frames=16, size=(128, 96))
    rec = load_ref_davis(root)[0]
    frames = [np.asarray(rec.frame(i)) for i in range(len(rec.frames))]
    prepared = prepare_clip(model, frames)
    assert prepared.llm_frames == list(range(16))
    assert prepared.tokens.clip.shape == (16, 576, model.preset.clip_width)
    out = segment_clip(model, tok, prepared, rec.sentence)
    assert out.logits.shape == (16, 1, 96, 128) and out.masks.dtype == torch.bool
    assert torch.isfinite(out.logits).all() and out.logits.std() > 0
    assert out.seg_embeddings.shape == (1, model.preset.out_dim)
    # a pruned visual stream (here: every other token) runs through the same path
    half = segment_clip(model, tok, prepared, rec.sentence, visual=prepared.tokens.visual[::2])
    assert half.logits.shape == out.logits.shape


@pytest.mark.slow
def test_real_sam2_hiera_l_decodes_a_1024_frame():
    """SAM 2 Hiera-L as VideoGLaMM builds it (1024 px, 64 x 64 embedding, 256 x 256 low-res masks) on random
    weights: one frame encoded, one [SEG] embedding decoded to the frame's size."""
    from litelvlm.videoglamm.checkpoint import _randomize
    from litelvlm.videoglamm.config import sam2_config
    from litelvlm.videoglamm.sam2_text import Sam2Text

    p = get_preset("videoglamm")
    sam = Sam2Text(sam2_config(p), p.sam2_image_size).eval()
    _randomize(sam.model.state_dict(keep_vars=True).items(), torch.Generator().manual_seed(0))
    frame = np.random.default_rng(0).integers(0, 256, (480, 854, 3), dtype=np.uint8)
    features = sam.encode(sam.preprocess(frame))
    assert [tuple(f.shape) for f in features] == [(1, 32, 256, 256), (1, 64, 128, 128), (1, 256, 64, 64)]
    with torch.no_grad():
        logits = sam.decode(features, torch.randn(2, 256), (480, 854))
    assert logits.shape == (2, 480, 854) and torch.isfinite(logits).all()


def test_ref_davis_bookkeeping_matches_official():
    from litelvlm.videoglamm.referdavis import annotator_expressions, clip_ranges, label_maps

    for n in (1, 63, 64, 65, 200):
        assert clip_ranges(n) == off.official_clips(n)
    for n in (4, 8, 12):
        records = list(range(n))
        assert [annotator_expressions(records, a) for a in range(4)] == off.official_annotator_indices(n)
    g = torch.Generator().manual_seed(4)
    masks = [torch.rand(5, 7, 9, generator=g) for _ in range(3)] + [
        (torch.rand(5, 7, 9, generator=g) > 0.5).float()]
    assert np.array_equal(label_maps(torch.stack(masks)), off.official_label_maps([m.clone() for m in masks]))


@pytest.mark.slow
def test_ref_davis_evaluation_on_synthetic_videos(tiny, tmp_path):
    from litelvlm.video.synthetic import write_synthetic_videos
    from litelvlm.videoglamm.referdavis import ANNOTATOR_SETS, evaluate_ref_davis

    model, _, tok = tiny
    root = write_synthetic_videos(tmp_path / "davis", videos=1, frames=6, size=(64, 48), seed=3)
    out = evaluate_ref_davis(model, tok, root)
    assert list(out) == list(ANNOTATOR_SETS)
    for summary in out.values():
        assert 0.0 <= summary.jf_mean <= 1.0 and summary.per_object


def test_pooled_projection_takes_pruned_square_counts(tiny):
    """The per-frame stream pruned to 196 or 81 tokens still pools to 144 per frame (arch.py's square
    assert)."""
    model = tiny[0]
    g = torch.Generator().manual_seed(5)
    video = torch.randn(4, 1024, model.preset.internvideo.embed_dim, generator=g)
    for n in (196, 81):
        clip = torch.randn(16, n, model.preset.clip_width, generator=g)
        assert model.project(video, clip).shape == (3328, model.preset.llm_hidden)
    with pytest.raises(AssertionError):
        model.project(video, torch.randn(16, 100 - 1, model.preset.clip_width))
    states = model.clip_hidden_states(torch.randn(2, 3, 336, 336, generator=g))
    assert len(states) == model.preset.clip_layers + 1 and states[-1].shape == (2, 577,
                                                                                model.preset.clip_width)


def test_greedy_answer_matches_transformers_generate(tiny):
    """The official answer is ``generate(num_beams=1, use_cache=False)`` (VideoGLaMM.py L616-626): the same
    ids."""
    from litelvlm.videoglamm.inference import greedy_answer

    model, _, tok = tiny
    ids = P.input_ids(tok, "the red square", answer=None)
    visual = torch.randn(200, model.preset.llm_hidden, generator=torch.Generator().manual_seed(6))
    ours = greedy_answer(model, ids, visual, eos_ids=(-1,), max_new_tokens=4)
    with torch.no_grad():
        ref = model.llm.generate(inputs_embeds=model.sequence_embeds(ids, visual), max_new_tokens=4,
                                 do_sample=False,
                                 num_beams=1, use_cache=False, eos_token_id=None, pad_token_id=0)
    assert torch.equal(ours[:, ids.shape[1]:], ref[:, -4:])


class _Scripted(torch.nn.Module):
    """An lm_head that emits ``script`` token by token (one-hot logits)."""

    def __init__(self, script, vocab):
        super().__init__()
        self.script, self.vocab, self.step = list(script), vocab, 0

    def forward(self, h):
        out = torch.zeros(*h.shape[:-1], self.vocab)
        out[..., self.script[min(self.step, len(self.script) - 1)]] = 1.0
        self.step += 1
        return out


def test_generated_answer_reads_the_rows_before_seg(tiny):
    from litelvlm.videoglamm.inference import PreparedClip, segment_clip

    model, _, tok = tiny
    seg, eos = tok.convert_tokens_to_ids("[SEG]"), tok.eos_token_id
    g = torch.Generator().manual_seed(7)
    tokens = type("T", (), {"visual": torch.randn(150, model.preset.llm_hidden, generator=g)})()
    frame = np.zeros((40, 56, 3), np.uint8)
    prepared = PreparedClip([frame], [0], tokens, [model.sam2.encode(model.sam2.preprocess(frame))])
    head = model.llm.lm_head
    try:
        model.llm.lm_head = _Scripted([260, seg, 16, eos], model.preset.vocab_size)
        out = segment_clip(model, tok, prepared, "the dog", answer=None)
        model.llm.lm_head = _Scripted([260, eos], model.preset.vocab_size)
        none = segment_clip(model, tok, prepared, "the dog", answer=None)
    finally:
        model.llm.lm_head = head
    assert out.input_ids[0, -4:].tolist() == [260, seg, 16, eos]
    hidden = model.final_hidden(model.sequence_embeds(out.input_ids, tokens.visual))
    rows = model.seg_rows(out.input_ids, 150, seg)
    assert torch.equal(out.seg_embeddings, model.seg_embeddings(hidden, rows)) and out.logits.shape == (
        1, 1, 40, 56)
    assert none.logits.shape == (1, 0, 40, 56)


@pytest.mark.parametrize("thresh", [0.98, 0.0, 2.0])
def test_framewise_sam2_matches_official(tiny, thresh):
    """Sam2Text (transformers' Sam2Model) against VideoGLaMM's frame-wise SAM 2 path on the same random
    weights, the mask decoder built with build_sam2's dynamic multimask fallback (threshold 0.98; 0 and 2
    force the single mask and the fallback). The image encoder and the decoder's predict_masks are UniPixel's
    SAM 2.1 copy (tests/official_unipixel_sam2.py): VideoGLaMM's SAM 2.0 files differ from it on this path
    only in formatting, ``do_pool``'s float32 round trip (exact for a max pool) and attention chunking of
    batches over 64."""
    from litelvlm.sam2.keys import sam2_from_hf
    from tests import official_unipixel_sam2 as sam_off

    model = tiny[0]
    s, size = model.preset.sam2, model.preset.sam2_image_size
    ref = sam_off.build_sam2(s.embed_dim, s.num_heads, s.stages, s.global_att_blocks, s.window_pos_embed_bkg,
                             s.window_spec, s.d_model, size).eval()
    ref.sam_mask_decoder.dynamic_multimask_via_stability = True   # build_sam.py L19-27 (apply_postprocessing)
    ref.sam_mask_decoder.dynamic_multimask_stability_thresh = thresh
    own = ref.state_dict()
    ours = sam2_from_hf(model.sam2.model.state_dict())
    ref.load_state_dict({k: v for k, v in ours.items() if k in own and v.shape == own[k].shape}, strict=False)
    assert {k for k in own if k not in ours} <= {"maskmem_tpos_enc", "no_mem_pos_enc", "no_obj_ptr",
                                                 "no_obj_embed_spatial", "obj_ptr_tpos_proj.weight",
                                                 "obj_ptr_tpos_proj.bias", "mask_downsample.weight",
                                                 "mask_downsample.bias"} | {k for k in own
                                                                            if k.startswith("obj_ptr_proj")}
    rng = np.random.default_rng(8)
    frames = [rng.integers(0, 256, (45, 70, 3), dtype=np.uint8) for _ in range(3)]
    prompts = torch.randn(3, s.d_model, generator=torch.Generator().manual_seed(8))
    decoder = model.sam2.model.mask_decoder
    try:
        decoder.dynamic_multimask_stability_thresh = thresh
        with torch.no_grad():
            pixels = torch.cat([sam2_pixels(f, size) for f in frames])
            expected = off.official_framewise_masks(ref, pixels, prompts, (45, 70),
                                                    [(size // k,) * 2 for k in (4, 8, 16)])
            got = [model.sam2.decode(model.sam2.encode(pixels[t:t + 1]), prompts, (45, 70)) for t in range(3)]
    finally:
        decoder.dynamic_multimask_stability_thresh = 0.98
    for a, b in zip(got, expected):
        assert torch.allclose(a, b, atol=1e-4, rtol=0), (a - b).abs().max()
    assert torch.equal(torch.stack(got) > 0, torch.stack(expected) > 0)
