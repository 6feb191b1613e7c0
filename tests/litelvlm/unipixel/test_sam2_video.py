"""UniPixel's SAM 2 video path (litelvlm.unipixel.sam2_video): the frame-0 hidden-state prompt carried by SAM
2's memory, on random weights of the tiny preset.

Always: the checkpoint's tracking tensors are the video model's; frame 0 equals the image path (UniPixel's
frame 0, tested against UniPixel's code in ``tests/litelvlm/unipixel/test_head.py``); frame 0 enters the
memory through the scaled sigmoid (UniPixel's ``binarize_mask_from_pts_for_mem_enc`` False,
``sam2/modeling/sam2_base.py`` L34, L1246-1251 of ``sam2_video_predictor.py``), not binarised, and memory
features keep the features' dtype (L906), not bfloat16; ``ground`` gives every frame.

Against UniPixel's own code (PolyU-ChenLab/UniPixel @5c8e941, read from ``../shared/official/UniPixel.git``;
skipped only when ``../shared`` is absent): its ``SAM2VideoPredictor`` (built as
``tests/golden/make_official_unipixel_sam2.py`` builds it, every ``sam2.*`` tensor of the file loaded
strictly) runs ``qwen2_5_vl.py`` L361-366 on the same frames and prompt, and every frame's logits are
compared.
"""

from __future__ import annotations

import copy
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

FRAMES, SIZE = 4, (45, 70)


def _frames(n: int = FRAMES, size=SIZE, seed: int = 0) -> list[Image.Image]:
    rng = np.random.default_rng(seed)
    base = rng.integers(0, 256, (*size, 3), dtype=np.uint8)
    return [Image.fromarray(np.roll(base, 3 * i, axis=1)) for i in range(n)]   # a shifting scene


@pytest.fixture(scope="module")
def tiny():
    """The shared tiny model's parts, its SAM 2 copied (and nudged: an object present, so masks are not the
    -1024 of an absent object)."""
    from types import SimpleNamespace

    from tests.unipixel_tiny import tiny_unipixel

    sam2 = copy.deepcopy(tiny_unipixel().sam2)
    # a video model another test built holds the weights before the nudge
    sam2.__dict__.pop("_video_model", None)
    with torch.no_grad():
        sam2.model.mask_decoder.pred_obj_score_head.proj_out.bias += 5.0
    return SimpleNamespace(sam2=sam2)


def _prompt(sam2, seed: int = 0) -> torch.Tensor:
    return torch.randn(2, sam2.hidden_dim, generator=torch.Generator().manual_seed(seed)) * 3


def test_video_model_holds_the_checkpoint_tensors(tiny):
    from litelvlm.unipixel.sam2_video import video_model
    from litelvlm.video.sam2_propagation import tracking_key_to_hf

    net = video_model(tiny.sam2)
    assert video_model(tiny.sam2) is net
    state = net.state_dict()
    for key, value in tiny.sam2.tracking.items():
        assert torch.equal(state[tracking_key_to_hf(key)], value), key
    for key, value in tiny.sam2.model.state_dict().items():
        assert torch.equal(state[key], value), key


def test_frame_0_is_the_image_path_and_memory_is_unipixels(tiny):
    from litelvlm.unipixel.sam2_video import propagated_logits, video_model

    sam2, frames, prompt = tiny.sam2, _frames(), _prompt(tiny.sam2)
    net = video_model(sam2)
    seen = []
    hook = net.memory_encoder.register_forward_hook(lambda m, args,
                                                    out: seen.append(args[1].detach().clone()))
    try:
        got = propagated_logits(sam2, frames, prompt, {})
    finally:
        hook.remove()
    assert got.shape == (FRAMES, 1, sam2.image_size // 4, sam2.image_size // 4)
    with torch.no_grad():
        first = sam2.decode(sam2.encode_image(sam2.preprocess(frames[0])), prompt[None], SIZE).low_res
    assert torch.allclose(got[:1], first.float(), atol=1e-4, rtol=1e-4)
    assert "_encode_new_memory" not in vars(net)   # restored after the call
    # frame 0's memory mask: UniPixel's sigmoid * 20 - 10 (values strictly inside), not transformers'
    # binarised +-10
    assert len(seen) == FRAMES and ((seen[0] > -10) & (seen[0] < 10)).any()


@pytest.mark.slow
def test_transformers_own_memory_differs(tiny):
    """Without :func:`unipixel_memory`, transformers binarises frame 0's mask and stores bfloat16 memory
    features."""
    from litelvlm.unipixel.sam2_video import propagated_logits, unipixel_memory, video_model
    from litelvlm.video.sam2_propagation import add_prompts, propagate_prompts, video_session

    sam2, frames, prompt = tiny.sam2, _frames(), _prompt(tiny.sam2)
    cache: dict = {}
    got = propagated_logits(sam2, frames, prompt, cache)
    net = video_model(sam2)
    seen = []
    hook = net.memory_encoder.register_forward_hook(lambda m, args,
                                                    out: seen.append(args[1].detach().clone()))
    try:
        hard = propagate_prompts(net, cache["pixels"], SIZE, prompt[None], features=cache["features"]).logits
    finally:
        hook.remove()
    assert set(seen[0].unique().tolist()) <= {-10.0, 10.0}
    assert torch.equal(hard[0], got[0]) and not torch.equal(hard[1:], got[1:])
    for patched, dtype in ((True, torch.float32), (False, torch.bfloat16)):
        session = video_session(net, cache["pixels"], SIZE, cache["features"])
        if patched:
            with unipixel_memory(net):
                add_prompts(net, session, prompt[None])
        else:
            add_prompts(net, session, prompt[None])
        assert session.output_dict_per_obj[0]["cond_frame_outputs"][0]["maskmem_features"].dtype == dtype


@pytest.mark.slow
def test_ground_gives_every_frame_through_the_memory():
    from litelvlm.registry.families import load_pipeline
    from litelvlm.unipixel.video_pipeline import UniPixelVideoPipeline

    base = load_pipeline("unipixel-tiny-random:0")
    base.sam2 = copy.deepcopy(base.sam2)
    with torch.no_grad():
        base.sam2.model.mask_decoder.pred_obj_score_head.proj_out.bias += 5.0
    pipe, flat = UniPixelVideoPipeline.of(base), UniPixelVideoPipeline.of(base, "frame-wise")
    assert pipe.propagation == "sam2" and "UniPixel's" in pipe.describe()["video"]["propagation"]
    assert "fallback" in flat.describe()["video"]["propagation"]
    prep = pipe.with_sentences(pipe.prepare_video(_frames(5, (61, 89), seed=3)), ["the dog"])
    with torch.no_grad():
        a, b = pipe.ground(prep, "fastv", 50), flat.ground(prep, "fastv", 50)
    assert a.masks.shape == b.masks.shape == (5, 61, 89)
    assert torch.allclose(a.mask_logits[0], b.mask_logits[0], atol=1e-4, rtol=1e-4)
    assert not torch.allclose(a.mask_logits[1:], b.mask_logits[1:], atol=1e-2)


# -- against UniPixel's own SAM2VideoPredictor (../shared/official/UniPixel.git) -----------------------------
@pytest.mark.parametrize("dtype, seeds",
                         [("float32", (0,)), pytest.param("float32", (1, 2), marks=pytest.mark.slow),
                                          pytest.param("bfloat16", (0, 1, 2), marks=pytest.mark.slow)])
def test_propagation_equals_unipixels_video_predictor(tiny, official, dtype, seeds):
    """One float32 prompt in the default suite; two more, and bfloat16 (UniPixel's evaluation dtype), in the
    slow one."""
    from litelvlm.sam2.keys import sam2_from_hf
    from litelvlm.unipixel.config import SAM2_SIZES, get_preset
    from litelvlm.unipixel.sam2_video import propagated_logits, unipixel_memory, video_model
    from litelvlm.video.sam2_propagation import add_prompts, video_session
    from tests import official_unipixel_sam2 as off

    repo = official.extract("UniPixel.git", "sam2")   # a folder holding UniPixel's sam2 package
    dt = getattr(torch, dtype)
    if dt != torch.float32:   # UniPixel's evaluation dtype (infer_seg.py --dtype bfloat16)
        from litelvlm.unipixel.checkpoint import load_unipixel

        tiny = load_unipixel("unipixel-tiny-random:0", processor=False, dtype=dt)
        with torch.no_grad():
            tiny.sam2.model.mask_decoder.pred_obj_score_head.proj_out.bias += 5.0
    net = video_model(tiny.sam2)
    sys.path.insert(0, str(Path(__file__).parents[2] / "golden"))
    import make_official_unipixel_sam2 as make

    s, image_size = SAM2_SIZES["tiny"], get_preset("tiny").image_size
    sizes = {"image_encoder.trunk.embed_dim": s.embed_dim, "image_encoder.trunk.num_heads": s.num_heads,
             "image_encoder.trunk.stages": list(s.stages),
             "image_encoder.trunk.global_att_blocks": list(s.global_att_blocks),
             "image_encoder.trunk.window_pos_embed_bkg_spatial_size": list(s.window_pos_embed_bkg),
             "image_encoder.trunk.window_spec": list(s.window_spec), "image_encoder.neck.d_model": s.d_model,
             "image_encoder.neck.backbone_channel_list": list(s.dims[::-1]),
             "image_encoder.neck.position_encoding.num_pos_feats": s.d_model, "num_maskmem": s.num_maskmem,
             "memory_attention.d_model": s.d_model, "memory_attention.num_layers": s.mem_layers,
             "memory_attention.layer.d_model": s.d_model, "memory_attention.layer.dim_feedforward": s.mem_ff,
             "memory_attention.layer.self_attention.embedding_dim": s.d_model,
             "memory_attention.layer.cross_attention.embedding_dim": s.d_model,
             "memory_attention.layer.cross_attention.kv_in_dim": s.mem_dim,
             "memory_encoder.out_dim": s.mem_dim, "memory_encoder.in_dim": s.d_model,
             "memory_encoder.mask_downsampler.embed_dim": s.mask_downsampler_embed,
             "memory_encoder.fuser.layer.dim": s.d_model,
             "memory_encoder.position_encoding.num_pos_feats": s.mem_dim}
    real = make.build_official_sam2(repo, image_size, sizes).eval()
    state = {**sam2_from_hf(tiny.sam2.model.state_dict()), **tiny.sam2.tracking}
    real.load_state_dict({k: v.float() for k, v in state.items()}, strict=True)
    real = real.to(dt)
    frames = _frames(6, SIZE, seed=5)
    video = off.get_sam2_transform(image_size)(
        torch.from_numpy(np.stack([np.asarray(f) for f in frames]))).to(dt)
    for seed in seeds:
        prompt = _prompt(tiny.sam2, seed).to(dt)
        with torch.inference_mode():
            st = real.init_state(video, SIZE)                                          # qwen2_5_vl.py L361
            real.add_new_hidden_state(st, 0, 0, prompt[None])                         # L362
            want = torch.cat([o[2] for o in real.propagate_in_video(st, verbose=False)], dim=1)   # L363
        low = propagated_logits(tiny.sam2, frames, prompt, {})
        got = torch.nn.functional.interpolate(low, SIZE, mode="bilinear", align_corners=False)[:, 0]
        err = (got.float() - want[0].float()).abs().max()
        assert want.shape == (1, 6, *SIZE) and (got > 0).any()
        # at most three bfloat16 steps (2 ** -7 of a logit's scale, 4 and up) after six frames of memory:
        # the CPU's bfloat16 kernels round differently (2.02 steps where torch emulates bfloat16 on AVX2)
        if dt != torch.float32:
            scale = want[0].float().abs().clamp_min(4.0)
            steps = ((got.float() - want[0].float()).abs() / scale).max() * 2 ** 7
            assert steps <= 3, (float(err), float(steps))
            assert (got.float() > 0).ne(want[0].float() > 0).float().mean() < 5e-3
            continue
        assert err < 1e-4, float(err)
        assert torch.equal(got > 0, want[0] > 0)
        # frame 0's memory, as UniPixel encodes it (the scaled sigmoid, float32), within float32 rounding
        mine = video_session(net, torch.cat([tiny.sam2.preprocess(f) for f in frames]), SIZE)
        with unipixel_memory(net):
            add_prompts(net, mine, prompt[None])
        ours = mine.output_dict_per_obj[0]["cond_frame_outputs"][0]["maskmem_features"]
        theirs = st["output_dict_per_obj"][0]["cond_frame_outputs"][0]["maskmem_features"]
        assert ours.dtype == theirs.dtype == torch.float32
        assert torch.allclose(ours.permute(1, 2, 0).reshape(theirs.shape), theirs, atol=1e-5, rtol=1e-5)
