"""``ground_batch``: several prompts through the LLM in one padded forward give ``ground``'s masks, each input
pruned by its own selection (K, N and the sequence length differing per input), on GLaMM, UniPixel and Sa2VA;
the runs that cannot share a forward are named and refused."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from litelvlm.errors import LiteLVLMError
from litelvlm.lvlm.batched import batch_error, ground_batch

#: odd image sizes (width x height); UniPixel's and Sa2VA's N then differ per image
SIZES = [(53, 37), (41, 64), (50, 50)]
SENTENCES = [["the red thing on the left"], ["a dog"], ["the big cat near the window"]]


def _prepared(pipe, sentences=SENTENCES):
    rng = np.random.default_rng(0)
    images = [Image.fromarray(rng.integers(0, 255, (h, w, 3), dtype=np.uint8)) for w, h in SIZES]
    return [pipe.with_sentences(pipe.prepare_image(im, seed=0), s) for im,
            s in zip(images, sentences, strict=True)]


def _same_as_one_by_one(pipe, preps, method, budget):
    with torch.no_grad():
        one = [pipe.ground(p, method, budget) for p in preps]
    batch = ground_batch(pipe, preps, method, budget)
    assert len(batch) == len(one)
    for o, b in zip(one, batch, strict=True):
        assert b.masks.shape == o.masks.shape
        assert torch.equal(b.masks, o.masks)                          # identical masks in float32
        torch.testing.assert_close(b.mask_logits, o.mask_logits, rtol=1e-4, atol=1e-4)
        assert torch.equal(b.kept_indices, o.kept_indices)
        assert (b.seq_len, b.budget, b.prune_layer, b.position_rule) == (o.seq_len, o.budget, o.prune_layer,
                                                                          o.position_rule)
        assert torch.equal(b.seg_positions.cpu(), o.seg_positions.cpu())
    assert torch.cat([o.mask_logits.flatten() for o in one]).std() > 0   # the logits compared are no constant
    return one


@pytest.fixture(scope="module")
def glamm_preps(tiny_glamm):
    # GLaMM's official prompt holds several expressions: the third prompt has two [SEG]s, the sequences differ
    return _prepared(tiny_glamm, [SENTENCES[0], SENTENCES[1], [SENTENCES[2][0], "a man"]])


# the default suite compares GLaMM's batched rows in tests/analysis/test_grounding_batch_size.py
@pytest.mark.slow
@pytest.mark.parametrize("method", ["litelvlm", "divprune"])
def test_glamm_batch_equals_one_by_one(tiny_glamm, glamm_preps, method):
    one = _same_as_one_by_one(tiny_glamm, glamm_preps, method, 8)
    assert len({o.seq_len for o in one}) == 3                           # padded: three sequence lengths
    assert one[2].masks.shape[0] == 2
    masks = torch.cat([o.masks.flatten() for o in one])
    # the masks compared hold pixels both ways
    assert masks.any() and not masks.all()


@pytest.mark.slow
@pytest.mark.parametrize("method,budget", [("none", None), ("random", 8), ("cdpruner", 16), ("visionzip", 16),
                                           ("litelvlm", 64)])
def test_glamm_batch_equals_one_by_one_more_methods(tiny_glamm, glamm_preps, method, budget):
    _same_as_one_by_one(tiny_glamm, glamm_preps, method, budget)


@pytest.mark.slow
def test_unipixel_batch_equals_one_by_one_with_n_per_image(tiny_unipixel_pipe):
    preps = _prepared(tiny_unipixel_pipe)
    assert len({tiny_unipixel_pipe.num_visual(p) for p in preps}) > 1  # N differs per image
    _same_as_one_by_one(tiny_unipixel_pipe, preps, "litelvlm", 8)


@pytest.mark.slow
@pytest.mark.parametrize("method,budget", [("none", None), ("divprune", 8), ("hiprune", 8), ("random", 4)])
def test_unipixel_batch_equals_one_by_one_more_methods(tiny_unipixel_pipe, method, budget):
    _same_as_one_by_one(tiny_unipixel_pipe, _prepared(tiny_unipixel_pipe), method, budget)


@pytest.fixture(scope="module")
def tiny_sa2va_pipe():
    from litelvlm.sa2va.pipeline import Sa2VAPipeline

    return Sa2VAPipeline.from_model_string("sa2va-tiny-random:0")


def test_sa2va_batch_equals_one_by_one(tiny_sa2va_pipe):
    _same_as_one_by_one(tiny_sa2va_pipe, _prepared(tiny_sa2va_pipe), "divprune", 8)


@pytest.mark.slow
@pytest.mark.parametrize("method,budget", [("none", None), ("litelvlm", 8), ("cdpruner", 4)])
def test_sa2va_batch_equals_one_by_one_more_methods(tiny_sa2va_pipe, method, budget):
    _same_as_one_by_one(tiny_sa2va_pipe, _prepared(tiny_sa2va_pipe), method, budget)


def test_methods_pruning_inside_the_llm_and_oracles_cannot_batch(tiny_sa2va_pipe):
    pipe = tiny_sa2va_pipe
    assert batch_error(pipe, "litelvlm") is None and batch_error(pipe, "none") is None
    assert "inside the LLM" in batch_error(pipe, "fastv")
    assert "inside the LLM" in batch_error(pipe, "sparsevlm")
    assert "oracle" in batch_error(pipe, "llm-attention")
    assert "decodes" in batch_error(pipe, "litelvlm", "generate")
    with pytest.raises(LiteLVLMError, match="cannot batch: fastv prunes inside the LLM"):
        ground_batch(pipe, [None], "fastv", 8)    # refused before any input is read
    assert ground_batch(pipe, [], "litelvlm", 8) == []


def _fake_lm(attn: str, layer_weights: int = 16, device: str = "cpu"):
    from types import SimpleNamespace

    config = SimpleNamespace(_attn_implementation=attn, num_attention_heads=4)
    layer = torch.nn.Linear(layer_weights, 1, bias=False, device="meta" if device != "cpu" else "cpu")
    return SimpleNamespace(config=config, dtype=torch.float32, layers=[layer])


def test_sub_batches_keep_each_forward_within_the_budget_and_cover_the_batch():
    from litelvlm.lvlm.batched import cache_bytes, sub_batches
    from litelvlm.memory import eager_attention_bytes

    lm = _fake_lm("eager")
    lengths = [50, 300, 40, 41, 290, 10, 7]

    def need(chunk):
        return eager_attention_bytes(len(chunk), 4, max(chunk), max(chunk), torch.float32)

    budget = need([300, 300])
    parts = sub_batches(lm, lengths, budget)
    # consecutive, all
    assert [i for p in parts for i in range(len(lengths))[p]] == list(range(len(lengths)))
    assert len(parts) > 1 and any(p.stop - p.start > 1 for p in parts)
    for p, nxt in zip(parts, [*parts[1:], None], strict=True):
        assert p.stop - p.start == 1 or need(lengths[p]) <= budget
        # greedy: the next sequence would not have fitted
        if nxt is not None:
            assert need(lengths[p.start:nxt.start + 1]) > budget
    assert [p.stop - p.start for p in sub_batches(lm, lengths, 1)] == [1] * len(lengths)   # at least one each
    assert sub_batches(lm, lengths, None) == [slice(0, len(lengths))]
    # a CPU's eager kernel
    assert sub_batches(lm, lengths, "auto") == sub_batches(lm, lengths, cache_bytes())
    assert sub_batches(_fake_lm("sdpa"), lengths, 1) == [slice(0, len(lengths))]           # no S x S scores
    whole = [slice(0, len(lengths))]
    assert sub_batches(_fake_lm("eager", device="meta"), lengths) == whole                # not a CPU
    # a layer's weights past it
    big = _fake_lm("eager", layer_weights=cache_bytes() // 4 + 1)
    assert sub_batches(big, lengths) == whole and sub_batches(big, lengths, budget) == parts
    assert cache_bytes() >= 2**20


def test_glamm_decoder_over_several_images_equals_one_call_per_image(tiny_glamm, glamm_preps):
    pipe = tiny_glamm
    gen = torch.Generator().manual_seed(0)
    c = pipe.model.arch.prompt_dim
    prompts = [torch.randn(n, c, generator=gen) for n in (1, 3, 2)]   # odd prompt counts per image
    with torch.no_grad():
        one = [pipe.decode_masks(p, q) for p, q in zip(glamm_preps, prompts, strict=True)]
        many = pipe.decode_masks_many(glamm_preps, prompts)
    assert [m.shape for m in many] == [o.shape for o in one]
    for o, m in zip(one, many, strict=True):
        torch.testing.assert_close(m, o, rtol=1e-5, atol=1e-5)
        assert torch.equal(m > 0, o > 0)
    assert torch.cat([o.flatten() for o in one]).std() > 0


def test_glamm_sub_batches_not_dividing_the_prompts_equal_one_by_one(tiny_glamm, glamm_preps):
    from litelvlm.lvlm.batched import sub_batches

    # 5 prompts
    preps = [*glamm_preps, *_prepared(tiny_glamm, [["a cup"], ["the left one"], ["two birds"]])[:2]]
    with torch.no_grad():
        one = [tiny_glamm.ground(p, "litelvlm", 8) for p in preps]
        lengths = [o.seq_len for o in one]
        budget = 2 * max(lengths) ** 2 * 4 * 4 * 3                  # about two sequences' eager scores
        assert len(sub_batches(tiny_glamm.language_model, lengths, budget)) > 1
        for kw in ({"sub_batch_bytes": budget}, {"sub_batch_bytes": None}):
            batch = ground_batch(tiny_glamm, preps[:3], "litelvlm", 8, **kw) + \
                ground_batch(tiny_glamm, preps[3:], "litelvlm", 8, **kw)   # B = 3 over 5 prompts
            for o, b in zip(one, batch, strict=True):
                assert torch.equal(b.masks, o.masks) and b.seq_len == o.seq_len
                torch.testing.assert_close(b.mask_logits, o.mask_logits, rtol=1e-4, atol=1e-4)
                torch.testing.assert_close(b.seg_hidden, o.seg_hidden, rtol=1e-5, atol=1e-5)
