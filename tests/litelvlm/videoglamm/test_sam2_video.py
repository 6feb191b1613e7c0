"""VideoGLaMM's SAM 2 video branch (``--use_sam2_video_branch``) and the generic propagation engine
(``litelvlm.video.sam2_propagation``) on random weights: against the official orchestration transcribed in
``tests/official_videoglamm_sam2_video.py`` (mbzuai-oryx/VideoGLaMM @6b15b1e), against transformers' own
propagation of a point prompt, the memory's effect, the checkpoint round trip, the flag off unchanged, and
``litelvlm eval-video --sam2-video-branch``."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from litelvlm.video.sam2_propagation import (
    propagate_prompts,
    set_memory_width,
    tracking_key_to_hf,
    video_session,
    vision_features,
)
from litelvlm.videoglamm.checkpoint import (
    build_videoglamm,
    load_videoglamm,
    sam2_tracking_shapes,
    videoglamm_tensors,
)
from litelvlm.videoglamm.config import get_preset
from litelvlm.videoglamm.inference import PreparedClip, prepare_clip, segment_clip
from litelvlm.videoglamm.sam2_video import sam2_video_config, video_branch_logits, video_model
from litelvlm.videoglamm.tokenizer import build_phi3_tokenizer
from tests import official_videoglamm_sam2_video as off

SIZE = (45, 70)


def _frames(n: int, seed: int = 0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [rng.integers(0, 256, (*SIZE, 3), dtype=np.uint8) for _ in range(n)]


def _sam_only(frames: list[np.ndarray]) -> PreparedClip:
    """A clip prepared for SAM 2 alone (the towers' tokens are not read by the video branch)."""
    return PreparedClip(frames, [], None, [])


@pytest.fixture(scope="module", params=[torch.float32, torch.bfloat16], ids=["float32", "bfloat16"])
def tiny(request):
    model, extras = build_videoglamm("tiny", seed=0, dtype=request.param)
    return model, extras, _sam_only(_frames(7)), request.param


def _official(model, prepared, prompts) -> torch.Tensor:
    with torch.no_grad():
        ref = off.inference_video_branch_masks(video_model(model), prepared.sam2_video[0],
                                               *prepared.original_size, prompts)
    return torch.stack([torch.stack([ref[t][o] for o in range(len(prompts))]) for t in sorted(ref)])


def test_video_branch_matches_official(tiny):
    """Two [SEG] objects on a 7-frame clip (memory bank of 3 full, pointers of every past frame): frame 0 is
    the official conditioning-frame output exactly, every frame within 1e-5 in float32 with equal masks; in
    bfloat16 transformers rounds the high-resolution logits to bfloat16 before the memory encoder (the
    official code keeps them in float32), so the logits agree to 0.1 and the masks on 99.9% of the pixels."""
    model, _, prepared, dtype = tiny
    prompts = torch.randn(2, model.preset.out_dim, generator=torch.Generator().manual_seed(1)).to(dtype)
    got = video_branch_logits(model, prepared, prompts)
    expected = _official(model, prepared, prompts)
    assert got.shape == expected.shape == (7, 2, *SIZE) and got.dtype == torch.float32
    assert torch.equal(got[0], expected[0])
    if dtype == torch.float32:
        assert (got - expected).abs().max() < 1e-5 and torch.equal(got > 0, expected > 0)
    else:
        assert (got - expected).abs().max() < 0.1 and ((got > 0) == (expected > 0)).float().mean() > 0.999
    assert got.std() > 0 and torch.isfinite(got).all()


@pytest.mark.parametrize(("frames", "size", "objects"), [(1, (33, 17), 1), (2, (1, 9), 3), (19, (27, 40), 1)])
def test_clip_lengths_match_official(tiny, frames, size, objects):
    """One frame (no propagation), two, and 19 (past the 16 object pointers ``max_obj_ptrs_in_encoder``
    keeps); odd frame sizes down to one pixel high."""
    model, _, _, dtype = tiny
    rng = np.random.default_rng(frames)
    prepared = _sam_only([rng.integers(0, 256, (*size, 3), dtype=np.uint8) for _ in range(frames)])
    prompts = torch.randn(objects, model.preset.out_dim,
                          generator=torch.Generator().manual_seed(frames)).to(dtype)
    got, expected = video_branch_logits(model, prepared, prompts), _official(model, prepared, prompts)
    assert got.shape == expected.shape == (frames, objects, *size) and torch.equal(got[0], expected[0])
    tol = 1e-5 if dtype == torch.float32 else 0.1
    assert (got - expected).abs().max() <= tol
    none = video_branch_logits(model, prepared, prompts[:0])   # no [SEG]: no mask (the official appends {})
    assert none.shape == (frames, 0, *size)


def test_later_frames_come_from_the_memory(tiny):
    """Frames > 0 see no prompt, only the memory: another frame-0 prompt changes every later frame (the run is
    deterministic, so any difference is the memory's; random weights make the mask decoder nearly blind to its
    prompt, so the change is small), a frame decoded with the memory differs from the same frame decoded as a
    conditioning frame, and one object's masks do not depend on the objects tracked beside it."""
    model, _, prepared, dtype = tiny
    net = video_model(model)
    pixels = torch.cat([model.sam2.preprocess(f) for f in prepared.frames])
    prompts = (4
               * torch.randn(3, 1, model.preset.out_dim, generator=torch.Generator().manual_seed(2))).to(
        dtype)
    many = propagate_prompts(net, pixels, SIZE, prompts)
    again = propagate_prompts(net, pixels, SIZE, prompts)
    assert torch.equal(many.logits, again.logits) and torch.equal(many.object_scores, again.object_scores)
    assert all(not torch.equal(many.logits[t, 0], many.logits[t, 1]) for t in range(1, 7))
    cond = propagate_prompts(net, pixels[3:], SIZE, prompts[:1])      # frame 3 as a conditioning frame
    assert (cond.logits[0, 0] - many.logits[3, 0]).abs().max() > 1e-2
    alone = propagate_prompts(net, pixels, SIZE, prompts[1:2])
    tol = 1e-5 if dtype == torch.float32 else 0.0
    assert (alone.logits[:, 0] - many.logits[:, 1]).abs().max() <= tol


def test_engine_equals_transformers_propagation_of_a_point(tiny):
    """The engine given the sparse embeddings of a point prompt (``append=False``) reproduces transformers'
    own propagation of that point (session point inputs, no hook) bit for bit."""
    model, _, prepared, dtype = tiny
    net = video_model(model)
    # this test's own (any test order)
    pixels = torch.cat([model.sam2.preprocess(f) for f in prepared.frames])
    coords, labels = torch.tensor([[[[40.0, 70.0]]]]), torch.tensor([[[1]]], dtype=torch.int32)
    session = video_session(net, pixels, SIZE)
    session.add_point_inputs(session.obj_id_to_idx(0), 0, {"point_coords": coords, "point_labels": labels})
    session.obj_with_new_inputs.append(0)
    with torch.inference_mode():
        net(session, frame_idx=0)
        expected = torch.stack([o.pred_masks.float().reshape(32, 32)
                                for o in net.propagate_in_video_iterator(session, start_frame_idx=0)])
        sparse, _ = net.prompt_encoder(coords.to(dtype), labels, None, None)
    got = propagate_prompts(net, pixels, SIZE, sparse[0, 0][None].clone(), append=False,
                            features=vision_features(net, pixels))
    assert got.logits.shape == (7, 1, 32, 32) and torch.equal(got.logits[:, 0], expected)
    assert net.prompt_encoder._forward_hooks == {}   # the hook is gone


def test_engine_on_a_sam21_configuration():
    """The engine on SAM 2.1's tracking options (occlusion embedding in the memory, temporal encoding of the
    object pointers; what UniPixel's SAM 2.1 has), random weights: transformers' own point propagation
    reproduced bit for bit, and an appended prompt is the point prompt's sparse embeddings plus the prompt."""
    from transformers import Sam2VideoModel

    from litelvlm.videoglamm.checkpoint import _randomize

    cfg = sam2_video_config(get_preset("tiny"))
    cfg.enable_occlusion_spatial_embedding = True
    cfg.enable_temporal_pos_encoding_for_object_pointers = True
    net = Sam2VideoModel(cfg).eval()
    set_memory_width(net, get_preset("tiny").sam2.mem_dim)
    _randomize(net.state_dict(keep_vars=True).items(), torch.Generator().manual_seed(4))
    assert net.occlusion_spatial_embedding_parameter.abs().sum() > 0
    pixels = torch.randn(5, 3, 128, 128, generator=torch.Generator().manual_seed(5))
    coords, labels = torch.tensor([[[[20.0, 90.0]]]]), torch.tensor([[[1]]], dtype=torch.int32)
    session = video_session(net, pixels, (30, 50))
    session.add_point_inputs(session.obj_id_to_idx(0), 0, {"point_coords": coords, "point_labels": labels})
    session.obj_with_new_inputs.append(0)
    with torch.inference_mode():
        net(session, frame_idx=0)
        expected = [o.pred_masks.float().reshape(32, 32)
                    for o in net.propagate_in_video_iterator(session, start_frame_idx=0)]
        sparse, _ = net.prompt_encoder(coords, labels, None, None)
        empty, _ = net.prompt_encoder(torch.zeros(1, 1, 1, 2), -torch.ones(1, 1, 1, dtype=torch.int32), None,
                                      None)
    got = propagate_prompts(net, pixels, (30, 50), sparse[0, 0][None].clone(), append=False)
    assert torch.equal(got.logits[:, 0], torch.stack(expected))
    extra = torch.randn(1, 2, 32, generator=torch.Generator().manual_seed(6))
    appended = propagate_prompts(net, pixels, (30, 50), extra)
    replaced = propagate_prompts(net, pixels, (30, 50), torch.cat([empty[0, 0], extra[0]])[None].clone(),
                                 append=False)
    assert torch.equal(appended.logits, replaced.logits) and not torch.equal(appended.logits, got.logits)


def test_flag_off_is_the_framewise_path(tiny):
    """``sam2_video_branch=False`` (the default) is the frame-wise decoding, bit for bit, and building the
    video model registers nothing on VideoGLaMM (its state dict and official tensors are unchanged)."""
    model, extras, _, dtype = tiny
    if dtype != torch.float32:
        pytest.skip("one dtype is enough for the frame-wise path")
    prepared = prepare_clip(model, _frames(1))
    tok = build_phi3_tokenizer("tiny")
    before = videoglamm_tensors(model, extras)
    video_model(model)
    after = videoglamm_tensors(model, extras)
    assert before.keys() == after.keys() and all(torch.equal(before[k], after[k]) for k in before)
    assert not any(k.startswith("_sam2_video") for k in model.state_dict())
    out = segment_clip(model, tok, prepared, "the red circle", sam2_video_branch=False)
    direct = torch.stack([model.sam2.decode(f, out.seg_embeddings, SIZE) for f in prepared.sam_features])
    assert torch.equal(out.logits, direct) and prepared.sam2_video is None
    on = segment_clip(model, tok, prepared, "the red circle", sam2_video_branch=True)
    assert torch.equal(on.seg_embeddings, out.seg_embeddings) and torch.equal(on.input_ids, out.input_ids)
    assert torch.equal(on.logits, video_branch_logits(model, prepared, out.seg_embeddings))


def test_tracking_names_map_onto_transformers():
    """Every official tracking tensor of both presets (and SAM 2.1's two extra ones) lands on a
    ``Sam2VideoModel`` tensor of the same shape, and every ``Sam2VideoModel`` tensor is covered."""
    from transformers import Sam2VideoConfig, Sam2VideoModel

    from litelvlm.videoglamm.config import sam2_config

    for name in ("tiny", "videoglamm"):
        p = get_preset(name)
        with torch.device("meta"):
            net = Sam2VideoModel(sam2_video_config(p))
            img = sam2_config(p)
        shapes = {k: tuple(v.shape) for k, v in net.state_dict().items()}
        mapped = {tracking_key_to_hf(k): s for k, s in sam2_tracking_shapes(p).items()}
        from transformers import Sam2Model

        with torch.device("meta"):
            image_keys = set(Sam2Model(img).state_dict())
        assert set(mapped) | image_keys == set(shapes) and not set(mapped) & image_keys
        wrong = {k for k, s in mapped.items() if shapes[k] != s}
        assert wrong <= ({"memory_attention.layers.0.cross_attn_image.k_proj.weight",
                          "memory_attention.layers.0.cross_attn_image.v_proj.weight"} if name == "tiny"
                         else set())
    assert tracking_key_to_hf("no_obj_embed_spatial") == "occlusion_spatial_embedding_parameter"
    assert tracking_key_to_hf(
        "obj_ptr_tpos_proj.bias") == "temporal_positional_encoding_projection_layer.bias"
    assert isinstance(sam2_video_config(get_preset("tiny")), Sam2VideoConfig)
    with pytest.raises(KeyError):
        tracking_key_to_hf("image_encoder.trunk.pos_embed")


def test_checkpoint_round_trip_carries_the_memory(tmp_path, monkeypatch):
    """Saved -> loaded: the tracking tensors reach the video model under transformers' names, and the loaded
    model's video branch equals the built one's."""
    monkeypatch.setenv("LITELVLM_CACHE", str(tmp_path / "cache"))
    model, extras = build_videoglamm("tiny", seed=0)
    net, _, _ = load_videoglamm("videoglamm-tiny-random:0")
    assert net.sam2_tracking.keys() == extras.keys()
    state = video_model(net).state_dict()
    assert all(torch.equal(state[tracking_key_to_hf(k)], v) for k, v in extras.items())
    frames = _frames(3, seed=5)
    prompts = torch.randn(1, model.preset.out_dim, generator=torch.Generator().manual_seed(3))
    a = video_branch_logits(model, _sam_only(frames), prompts)
    b = video_branch_logits(net, _sam_only(frames), prompts)
    assert torch.equal(a, b)
    from litelvlm.videoglamm.model import VideoGLaMM

    half = net.to(torch.bfloat16)
    half.sam2_tracking = {k: v.to(torch.bfloat16) for k, v in half.sam2_tracking.items()}
    assert video_model(half).no_memory_embedding.dtype == torch.bfloat16   # rebuilt for the new dtype
    with pytest.raises(ValueError, match="tracking tensors"):
        video_model(VideoGLaMM(get_preset("tiny")))


FAST = ["--anno-sets", "0", "--synthetic-videos", "1", "--synthetic-frames", "2", "--synthetic-seed", "11",
        "--methods", "random", "--budgets", "81"]


def test_eval_video_option():
    """``--sam2-video-branch`` is a flag of ``eval-video`` (off by default), parsed without torch."""
    import argparse

    from analysis.video.options import VideoArgs, add_arguments

    parser = argparse.ArgumentParser()
    add_arguments(parser)
    assert parser.parse_args(["--out", "x"]).sam2_video_branch is False
    assert parser.parse_args(["--out", "x", "--sam2-video-branch"]).sam2_video_branch is True
    assert VideoArgs(out="x").sam2_video_branch is False


@pytest.mark.slow
def test_eval_video_with_the_video_branch(tmp_path):
    """``eval-video --sam2-video-branch`` runs, records the flag, and a run without it is refused in that
    folder."""
    import json

    import pandas as pd

    from litelvlm.cli import main

    out = tmp_path / "video"
    assert main(["eval-video", "--out", str(out), "--sam2-video-branch", *FAST]) == 0
    assert json.loads((out / "config.json").read_text())["sam2_video_branch"] is True
    s = pd.read_csv(out / "summary.csv")
    assert list(s.method) == ["none", "random"] and s["J&F"].between(0, 1).all()
    first = (out / "summary.csv").read_bytes()
    assert main(["eval-video", "--out", str(out), *FAST]) == 2
    assert (out / "summary.csv").read_bytes() == first


@pytest.mark.slow
def test_eval_video_video_branch_resumes_and_plain_folders_refuse_it(tmp_path):
    """A run with the flag resumes to the same bytes; a folder written without it refuses it and records
    nothing new (folders written before the option stay resumable); both score the same expressions."""
    import json

    import pandas as pd

    from litelvlm.cli import main

    out, plain = tmp_path / "video", tmp_path / "plain"
    assert main(["eval-video", "--out", str(out), "--sam2-video-branch", *FAST]) == 0
    first = (out / "summary.csv").read_bytes()
    assert main(["eval-video", "--out", str(out), "--sam2-video-branch", *FAST]) == 0
    assert (out / "summary.csv").read_bytes() == first
    assert main(["eval-video", "--out", str(plain), *FAST]) == 0
    assert "sam2_video_branch" not in json.loads((plain / "config.json").read_text())
    assert main(["eval-video", "--out", str(plain), "--sam2-video-branch", *FAST]) == 2
    a = pd.read_parquet(out / "expressions.parquet")
    b = pd.read_parquet(plain / "expressions.parquet")
    assert len(a) == len(b) and list(a.sentence) == list(b.sentence)


@pytest.mark.slow
def test_real_size_video_branch_matches_official():
    """SAM 2 Hiera-L at 1024 px with the memory modules of ``sam2_hiera_l.yaml`` (7 memories, 64-wide memory,
    4 memory-attention layers) on random weights: two [SEG] objects over three frames against the
    transcription."""
    from types import SimpleNamespace

    from litelvlm.videoglamm.checkpoint import _randomize
    from litelvlm.videoglamm.config import sam2_config
    from litelvlm.videoglamm.sam2_text import Sam2Text

    p = get_preset("videoglamm")
    gen = torch.Generator().manual_seed(0)
    sam = Sam2Text(sam2_config(p), p.sam2_image_size).eval()
    _randomize(sam.model.state_dict(keep_vars=True).items(), gen)
    tracking = {k: torch.empty(s) for k, s in sam2_tracking_shapes(p).items()}
    _randomize(tracking.items(), gen)
    model = SimpleNamespace(preset=p, sam2=sam, sam2_tracking=tracking)
    rng = np.random.default_rng(0)
    prepared = _sam_only([rng.integers(0, 256, (120, 213, 3), dtype=np.uint8) for _ in range(3)])
    prompts = torch.randn(2, 256, generator=gen)
    got = video_branch_logits(model, prepared, prompts)
    expected = _official(model, prepared, prompts)
    assert got.shape == (3, 2, 120, 213) and torch.equal(got[0], expected[0])
    assert (got - expected).abs().max() < 1e-4 and torch.equal(got > 0, expected > 0)
