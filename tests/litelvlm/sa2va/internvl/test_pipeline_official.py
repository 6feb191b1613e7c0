"""Sa2VA-InternVL3 against its official code (bytedance/Sa2VA @9832e1a, ``projects/sa2va/hf/models/``: the
released ``Sa2VAChatModel``, run by :mod:`tests.sa2va_internvl_official`) on random weights of the tiny
preset: the checkpoint loaded strictly into the official module tree, the tiles and pixels of
``dynamic_preprocess`` over odd image sizes, InternViT + ``mlp1`` (``extract_feature``), the prompt and pixels
``predict_forward`` builds for an image and a video, the ``[SEG]`` states and masks of the official forward,
and the pruned path at the budgets (every budget 1..N on a one-tile image under ``-m slow``). Ours runs with
eager attention (what the official code computes without ``flash_attn``), so the LLM's states are compared bit
for bit. Skipped when ``../shared`` is absent."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from tests import sa2va_internvl_official as off
from tests.fixtures.images import noise_image, noise_video

pytestmark = pytest.mark.skipif(not off.available(),
                                reason="the official Sa2VA code (../shared/official/Sa2VA) is absent")

SLOW = pytest.mark.slow
ODD_SIZES = [(1, 1), pytest.param((7, 300), marks=SLOW), (91, 137), pytest.param((333, 41), marks=SLOW),
             pytest.param((480, 640), marks=SLOW)]
QUESTION = "<image>\n Please segment the cat in this image."   # RES.py L186


@pytest.fixture(scope="module")
def tiny(internvl_tiny):
    """(the tiny preset's folder, our pipeline on it, the official model on it)."""
    from litelvlm.sam2.config import sam2_size

    model = off.official_model(internvl_tiny.folder, sam2_size("tiny"), 128)   # strict: every tensor
    off.prepared_for_generation(model, internvl_tiny.pipe.tokenizer, 128, torch.float32)
    return internvl_tiny.folder, internvl_tiny.pipe, model


def sam_pixels(model, frames, video: bool) -> torch.Tensor:
    """The official SAM 2 pixels of ``predict_forward`` at the released dtype (bfloat16, L633-659), cast to
    the tiny preset's float32: ``DirectResize``, then ``preprocess_image`` (an image cast to bfloat16 first, a
    video's frames left uint8)."""
    out = []
    for frame in frames:
        g = torch.from_numpy(model.extra_image_processor.apply_image(np.array(frame))).permute(2, 0, 1)
        g = g.contiguous() if video else g.contiguous().to(torch.bfloat16)
        out.append(model.grounding_encoder.preprocess_image(g))
    return torch.stack(out).to(torch.bfloat16).float()


def test_the_checkpoint_is_the_official_module_tree(tiny):
    """The folder's tensors load strictly into ``Sa2VAChatModel`` (the fixture), built by its own ``__init__``
    from the folder's ``config.json``: InternViT, ``mlp1``, Qwen2, ``text_hidden_fcs``, SAM 2."""
    from transformers import Qwen2ForCausalLM

    _, pipe, model = tiny
    assert off.same_sam2()
    assert type(model.vision_model).__name__ == "InternVisionModel"
    assert isinstance(model.language_model, Qwen2ForCausalLM)
    assert model.num_image_token == 256 and model.template == off.official("templates").PROMPT_TEMPLATE[
        "qwen_chat"]
    assert model.config.llm_config.vocab_size == len(pipe.tokenizer) == 420
    assert model.img_context_token_id == pipe.image_token_id and model.seg_token_idx == pipe.seg_token_id


@pytest.mark.parametrize("size", ODD_SIZES)
def test_tiles_and_pixels_are_dynamic_preprocess(tiny, size):
    """The tiles (``dynamic_preprocess(image, 1, 12, 448, True)``, L661-663) and their pixels
    (``self.transformer``) of odd image sizes, ours equal."""
    from litelvlm.sa2va.internvl.tiles import image_tiles, tile_grid, tile_pixels

    _, _, model = tiny
    image = noise_image(*size, seed=sum(size))
    ref = off.official("modeling_sa2va_chat").dynamic_preprocess(image, 1, 12, 448, True)
    grid = tile_grid(image.width, image.height, 12)
    mine = image_tiles(image, grid)
    assert len(mine) == len(ref) == grid.num_tiles
    assert all(np.array_equal(np.asarray(a), np.asarray(b)) for a, b in zip(mine, ref, strict=True))
    assert torch.equal(tile_pixels(mine, torch.float32), torch.stack([model.transformer(t) for t in ref]))


def test_features_are_extract_feature(tiny):
    """InternViT's last state without [CLS], pixel shuffle v2, ``mlp1`` (``extract_feature`` L222-240) on a
    tile: transformers' modules with the mapped names give the official features, bit for bit (several tiles
    at once: the prompt tests under ``-m slow``)."""
    from litelvlm.sa2va.internvl.tiles import image_tiles, tile_grid, tile_pixels

    _, pipe, model = tiny
    image = noise_image(40, 40, seed=5)
    tiles = image_tiles(image, tile_grid(image.width, image.height, 12))
    pixels = tile_pixels(tiles, torch.float32)
    with torch.no_grad():
        ref = model.extract_feature(pixels)
    assert ref.shape == (len(tiles), 256, 64)
    assert torch.equal(pipe._features(tiles), ref.reshape(-1, 64))


@pytest.mark.parametrize("size", [(40, 40), pytest.param((50, 100), marks=pytest.mark.slow)])
def test_the_prompt_and_pixels_are_predict_forwards(tiny, size):
    """What ``predict_forward`` hands ``generate`` for an image (one tile; two tiles and the thumbnail): its
    pixels and prompt ids are ours under ``answer="generate"``."""
    _, pipe, model = tiny
    image = noise_image(*size, seed=1)
    seen = off.recorded_predict_forward(model, pipe.tokenizer, image=image, text=QUESTION)
    prep = pipe.with_sentences(pipe.prepare_image(image), ["the cat"], answer="generate")
    assert torch.equal(seen["input_ids"][0], prep.input_ids)
    assert pipe.num_visual(prep) == len(seen["pixel_values"]) * 256
    from litelvlm.sa2va.internvl.tiles import image_tiles, tile_pixels

    assert torch.equal(seen["pixel_values"], tile_pixels(image_tiles(image, prep.grid), torch.float32))


def test_seg_states_and_masks_are_the_official_forward(tiny):
    """The teacher-forced prompt through the official ``generate`` (its embeddings, its LLM): the final state
    of the [SEG] row is ours bit for bit; its masks through the official ``text_hidden_fcs`` and SAM 2 on the
    official SAM 2 pixels are ours."""
    _, pipe, model = tiny
    image = noise_image(40, 40, seed=2)
    prep = pipe.prepare(image, ["the cat"])
    out = pipe.ground(prep, "none")
    from litelvlm.sa2va.internvl.tiles import image_tiles, tile_pixels

    pixels = tile_pixels(image_tiles(image, prep.grid), torch.float32)
    hidden = off.seg_states(model, pixels, prep.input_ids, pipe.seg_token_id)
    assert hidden.shape == (1, 64) and torch.equal(hidden, out.seg_hidden)
    ref = off.official_logits(model, sam_pixels(model, [image], video=False), hidden, (40, 40), 1)[:, 0]
    torch.testing.assert_close(out.mask_logits, ref, atol=1e-5, rtol=1e-5)
    assert torch.equal(out.masks, ref.sigmoid() > 0.5)


def _pruned_against_official(pipe, model, prep, image, method: str, budgets, masks=None) -> None:
    """At each budget K: our run of ``method`` keeps K tokens at the LLM input (positions 0..S'-1); the
    official ``generate`` given the same K features of ``extract_feature`` (its ``visual_features``) at K
    ``<IMG_CONTEXT>`` rows of the official template gives the same [SEG] state, and its SAM 2 the same mask
    (at the budgets ``masks``; None: at all)."""
    from litelvlm.sa2va.internvl.tiles import image_tiles, tile_pixels

    pixels = tile_pixels(image_tiles(image, prep.grid), torch.float32)
    with torch.no_grad():
        features = model.extract_feature(pixels).reshape(1, -1, 64)
    g_pixels = sam_pixels(model, [image], video=False)
    for k in budgets:
        out = pipe.ground(prep, method, k)
        assert out.seq_len == len(prep.input_ids) - pipe.num_visual(prep) + k
        assert out.position_rule == "renumber"
        text = model.template["INSTRUCTION"].format(
            input=QUESTION.replace("<image>", "<img>" + "<IMG_CONTEXT>" * k + "</img>")) + "It is [SEG]."
        ids = torch.tensor(pipe.tokenizer.encode(text))
        hidden = off.seg_states(model, pixels[:1], ids, pipe.seg_token_id,
                                visual_features=features[:, out.kept_indices.long()])
        assert torch.equal(hidden, out.seg_hidden), (method, k)
        if masks is None or k in masks:
            ref = off.official_logits(model, g_pixels, hidden, image.size[::-1], 1)[:, 0]
            assert torch.equal(out.masks, ref.sigmoid() > 0.5), (method, k)


@pytest.mark.parametrize("method", ["divprune", pytest.param("random", marks=pytest.mark.slow),
                                    pytest.param("litelvlm", marks=pytest.mark.slow)])
def test_the_pruned_path_is_the_official_forward_on_the_kept_tokens(tiny, method):
    """This project's pruning against the official forward on the tokens it kept, at the ends and the middle
    of the budget range (a method choosing at the LLM input, its [SEG] states; under ``-m slow`` a random
    selection and the paired CLIP mapped onto the tiles, their masks too)."""
    _, pipe, model = tiny
    image = noise_image(40, 40, seed=3)
    prep = pipe.prepare(image, ["the cat"])
    fast = method == "divprune"
    _pruned_against_official(pipe, model, prep, image, method, [1, 129, 256], masks=[] if fast else None)


@pytest.mark.slow
def test_the_pruned_path_at_every_budget(tiny):
    """Every budget 1..N (N = 256, one tile) of a random selection against the official forward: the [SEG]
    state at every budget, the mask at every eighth and at the ends."""
    _, pipe, model = tiny
    image = noise_image(40, 40, seed=4)
    prep = pipe.prepare(image, ["the cat"])
    _pruned_against_official(pipe, model, prep, image, "random", range(1, 257),
                             masks={1, 2, 255, 256, *range(8, 257, 8)})


def test_the_video_prompt_and_pixels_are_predict_forwards(tiny):
    """What ``predict_forward``'s video branch hands ``generate`` for two frames (each whole, one ``<img>``
    block each, L627-648, L703-708): its pixels and prompt ids are ours under ``answer="generate"``."""
    from litelvlm.sa2va.internvl.tiles import tile_pixels

    _, pipe, model = tiny
    video = noise_video(2, 30, 50, seed=2)
    question = "<image>\nPlease segment the bird."   # refVOS.py L13-14, L99
    seen = off.recorded_predict_forward(model, pipe.tokenizer, video=video, text=question)
    prep = pipe.with_sentences(pipe.prepare_video(video), ["the bird"], answer="generate")
    assert torch.equal(seen["input_ids"][0], prep.input_ids)
    assert torch.equal(seen["pixel_values"], tile_pixels(video, torch.float32))


@pytest.mark.slow   # SAM 2's memory over a video is the Qwen2.5-VL test's (the same sam2.py)
@pytest.mark.parametrize("frames", [2, 7])
def test_the_video_is_predict_forwards(tiny, frames):
    """A video through the pipeline (method none): the frames and prompt ``predict_forward``'s video branch
    builds (the first min(5, T) frames whole, one ``<img>`` block each, L627-648, L703-708), the [SEG] state
    of the official forward, its masks over every frame from SAM 2's memory (``language_embd_inference`` on
    the first min(5, T) frames, L758-768)."""
    _, pipe, model = tiny
    video = noise_video(frames, 30, 50, seed=frames)
    question = "<image>\nPlease segment the bird."   # refVOS.py L13-14, L99
    seen = off.recorded_predict_forward(model, pipe.tokenizer, video=video, text=question)
    prep = pipe.prepare_video(video)
    generated = pipe.with_sentences(prep, ["the bird"], answer="generate")
    assert torch.equal(seen["input_ids"][0], generated.input_ids)
    from litelvlm.sa2va.internvl.tiles import tile_pixels

    pixels = tile_pixels(video[:5], torch.float32)
    assert torch.equal(seen["pixel_values"], pixels)
    prompt = pipe.with_sentences(prep, ["the bird"])
    out = pipe.ground(prompt, "none")
    hidden = off.seg_states(model, pixels, prompt.input_ids, pipe.seg_token_id)
    assert torch.equal(hidden, out.seg_hidden)
    g_pixels = sam_pixels(model, video, video=True)
    ref = off.official_logits(model, g_pixels, hidden, (30, 50), min(5, frames))[0]
    assert out.masks.shape == (1, frames, 30, 50)
    torch.testing.assert_close(out.mask_logits[0], ref, atol=1e-4, rtol=1e-4)
    assert torch.equal(out.masks[0], ref.sigmoid() > 0.5)


@pytest.mark.slow
def test_full_size_names_and_shapes_are_the_official():
    """The 2B preset's config.json builds the official ``Sa2VAChatModel`` (InternViT-300M on the CPU in
    bfloat16, Qwen2.5-1.5B on ``meta``, passed to its ``__init__`` as L119-125 allows): every tensor name and
    shape of its LVLM and ``text_hidden_fcs``' input side is the preset's (SAM 2's are Sa2VA-Qwen2.5-VL's,
    tested there)."""
    from transformers import Qwen2ForCausalLM

    from litelvlm.sa2va.internvl.checkpoint import build_internvl, internvl_tensors
    from litelvlm.sa2va.internvl.config import get_preset, released_config
    from litelvlm.sam2.config import sam2_size

    cfg = released_config(get_preset("internvl3-2b"))
    config = off.official("configuration_sa2va_chat").Sa2VAChatConfig(
        **{k: v for k, v in cfg.items() if k not in ("model_type", "auto_map")})
    saved = torch.get_default_dtype()
    torch.set_default_dtype(torch.bfloat16)
    try:
        vision = off.official("modeling_intern_vit").InternVisionModel(config.vision_config)
    finally:
        torch.set_default_dtype(saved)
    with torch.device("meta"):
        llm = Qwen2ForCausalLM(config.llm_config)
    ref = off.official_model_of(config, sam2_size("tiny"), 128, vision, llm).state_dict()
    mine = internvl_tensors(*build_internvl("internvl3-2b", device="meta"))
    lvlm = ("vision_model.", "mlp1.", "language_model.", "text_hidden_fcs.0.")
    assert {k: tuple(v.shape) for k, v in ref.items() if k.startswith(lvlm)} == {
        k: tuple(v.shape) for k, v in mine.items() if k.startswith(lvlm)}
    assert mine["language_model.model.embed_tokens.weight"].shape == (151679, 1536)
