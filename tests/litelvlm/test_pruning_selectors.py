"""Selector semantics on hand-built tensors, and every registered method on a tiny random CLIP."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from litelvlm.clip.traces import TextTrace, VisionTrace
from litelvlm.errors import LiteLVLMError
from litelvlm.methods import available_methods, get_method
from litelvlm.methods.select import select, visual_features
from litelvlm.pruning import SelectorInputs, context_scores, similarity


class HandBackend:
    """A stand-in backend whose projection is the identity and whose q/k/v are given."""

    name = "hand"
    vision_heads = 1

    def __init__(self, q, k, v):
        self._qkv = (q, k, v)

    def project_patches(self, patches):
        return patches

    def vision_qkv(self, block, hidden):
        return self._qkv


def hand_inputs(sims: np.ndarray, q_cls, keys, values) -> SelectorInputs:
    """Patch i's projected token is column i of ``sims`` for one-hot text embeddings."""
    T, N = sims.shape
    patches = torch.tensor(sims.T, dtype=torch.float32)[None]  # (1, N, T)
    hidden = torch.cat([torch.zeros(1, 1, T), patches], dim=1)
    q = torch.cat([torch.tensor(q_cls, dtype=torch.float32)[None, None],
                   torch.zeros(1, N, len(q_cls))], dim=1)
    k = torch.cat([torch.zeros(1, 1, len(q_cls)), torch.tensor(keys, dtype=torch.float32)[None]], dim=1)
    v = torch.cat([torch.zeros(1, 1, values.shape[1]), torch.tensor(values, dtype=torch.float32)[None]],
                  dim=1)
    backend = HandBackend(q, k, v)
    vision = VisionTrace(hidden_states=(hidden, hidden, hidden), grid=(1, N), num_prefix_tokens=1,
                         backend=backend)
    text = TextTrace(texts=[f"t{i}" for i in range(T)], input_ids=torch.zeros(T, 2, dtype=torch.long),
                     eos_index=torch.ones(T, dtype=torch.long), text_embeds=torch.eye(T),
                     hidden_states=None, truncated=[False] * T, backend=backend)
    return SelectorInputs(vision=vision, text=text)


RNG = np.random.default_rng(0)
N = 10
SIMS = np.array([[5, 1, 9, 0, 7, 3, 8, 2, 6, 4],     # lowest two: 3 (0.0), 1 (1.0)
                 [0, 9, 8, 7, 1, 6, 5, 4, 3, 2]], float)  # lowest two: 0 (0.0), 4 (1.0)
Q = RNG.normal(size=4)
KEYS = RNG.normal(size=(N, 4))
VALUES = RNG.normal(size=(N, 3))


def expected_context() -> np.ndarray:
    qn = Q / np.linalg.norm(Q)
    kn = KEYS / np.linalg.norm(KEYS, axis=1, keepdims=True)
    logits = kn @ qn / np.sqrt(4)
    w = np.exp(logits) / np.exp(logits).sum()
    return np.linalg.norm(w[:, None] * VALUES, axis=1)


def test_similarity_is_the_raw_dot_product():
    inp = hand_inputs(SIMS, Q, KEYS, VALUES)
    np.testing.assert_allclose(similarity(inp, layer=-2).numpy(), SIMS)
    cos = similarity(inp, layer=-2, kind="cosine").numpy()
    np.testing.assert_allclose(np.abs(cos).max(), 1.0, atol=1e-6)


def test_context_score_matches_an_independent_computation():
    inp = hand_inputs(SIMS, Q, KEYS, VALUES)
    np.testing.assert_allclose(context_scores(inp).numpy(), expected_context(), rtol=1e-5)


def test_litelvlm_order_and_semantics_two_texts():
    inp = hand_inputs(SIMS, Q, KEYS, VALUES)
    K = 7
    sel = select("litelvlm", inp, K)
    # K // T = 3 lowest per text: {3, 1, 7} and {0, 4, 9}, united and sorted ascending; one context token
    low3 = sorted(set(np.argsort(SIMS[0])[:3]) | set(np.argsort(SIMS[1])[:3]))
    assert low3 == [0, 1, 3, 4, 7, 9]
    ctx_order = [i for i in np.argsort(-expected_context(), kind="stable") if i not in low3]
    expected = ctx_order[: K - len(low3)] + low3
    assert sel.indices.tolist() == [int(i) for i in expected]
    assert sel.parts["similarity"].tolist() == low3


def test_litelvlm_union_overlap_is_filled_by_context():
    sims = np.stack([SIMS[0], SIMS[0]])  # identical texts: the union has K//2 tokens
    inp = hand_inputs(sims, Q, KEYS, VALUES)
    sel = select("litelvlm", inp, 4)
    low = sorted(np.argsort(SIMS[0])[:2].tolist())
    ctx = [i for i in np.argsort(-expected_context(), kind="stable") if i not in low]
    assert sel.indices.tolist() == ctx[:2] + low


def test_litelvlm_options():
    inp = hand_inputs(SIMS, Q, KEYS, VALUES)
    per_q = select("litelvlm", inp, 4, per_query=True, query_index=1)
    assert sorted(per_q.parts["similarity"].tolist()) == sorted(np.argsort(SIMS[1])[:4].tolist())
    raster = select("litelvlm", inp, 6, raster=True)
    assert raster.indices.tolist() == sorted(select("litelvlm", inp, 6).indices.tolist())
    ctx_heavy = select("litelvlm-ctx", inp, 6)  # 3 of 6 to context first: 1 lowest per text
    assert ctx_heavy.parts["similarity"].tolist() == sorted({3, 0})
    top = select("clip_topsim", inp, 6)
    assert top.parts["similarity"].tolist() == sorted(set(np.argsort(-SIMS[0])[:3])
                                                      | set(np.argsort(-SIMS[1])[:3]))


def test_full_budget_in_raster_order_equals_the_unpruned_features():
    inp = hand_inputs(SIMS, Q, KEYS, VALUES)
    unpruned, _ = visual_features(inp, "none")
    for method in ("litelvlm", "litelvlm-ctx", "clip_topsim"):
        feats, sel = visual_features(inp, method, N, raster=True)
        assert torch.equal(feats, unpruned), method
    for method in ("random", "vispruner"):
        feats, _ = visual_features(inp, method, N)
        assert torch.equal(feats, unpruned), method


@pytest.fixture(scope="module")
def tiny_inputs(tiny_hf_clip):
    pix = torch.randn(1, 3, 56, 56, generator=torch.Generator().manual_seed(3))
    return SelectorInputs(tiny_hf_clip.trace_image(pix), tiny_hf_clip.encode_text(["a dog", "the red cup"]))


@pytest.mark.parametrize("method",
                         ["litelvlm", "litelvlm-ctx", "clip_topsim", "random", "vispruner", "visionzip"])
@pytest.mark.parametrize("budget", [1, 5, 16])
def test_every_clip_method_returns_k_distinct_valid_tokens(tiny_inputs, method, budget):
    feats, sel = visual_features(tiny_inputs, method, budget)
    idx = sel.indices.tolist()
    cls = int(method == "visionzip")  # VisionZip passes the CLS token on, first, as index -1
    assert idx[:cls] == [-1] * cls
    idx = idx[cls:]
    assert len(sel) == budget == len(set(idx)) + cls and all(0 <= i < 16 for i in idx)
    assert feats.shape == (budget, 48) and torch.isfinite(feats).all()


def test_visionzip_keeps_cls_and_adds_merged_means_to_targets(tiny_inputs):
    feats, sel = visual_features(tiny_inputs, "visionzip", 16)  # CLS + 13 patches dominant, 2 contextual
    patches = tiny_inputs.patches()
    dom = sel.parts["dominant"]
    assert dom[0] == -1 and dom.numel() == 14
    torch.testing.assert_close(feats[0], tiny_inputs.vision.cls(-2)[0])
    torch.testing.assert_close(feats[1:14], patches[dom[1:]])
    # one patch is left over: it is added (as a mean of one) to the target it was assigned to
    ctx = sel.parts["contextual"]
    left = sorted(set(range(16)) - set(sel.indices.tolist()))
    assert len(left) == 1 and ctx.numel() == 2
    torch.testing.assert_close((feats[14:] - patches[ctx]).sum(0), patches[left[0]])


def test_vispruner_keeps_the_top_attention_tokens(tiny_inputs):
    sel = select("vispruner", tiny_inputs, 8)
    top = set(sel.scores.argsort(descending=True)[:4].tolist())
    assert top <= set(sel.indices.tolist())


def test_random_is_seeded():
    inp = hand_inputs(SIMS, Q, KEYS, VALUES)
    a = select("random", inp, 4).indices
    assert torch.equal(a, select("random", inp, 4).indices)
    assert not torch.equal(a, select("random", inp, 4, seed=1).indices)
    assert a.tolist() == sorted(a.tolist())


def test_registry_errors():
    inp = hand_inputs(SIMS, Q, KEYS, VALUES)
    with pytest.raises(LiteLVLMError, match="known methods: .*litelvlm"):
        select("nope", inp, 3)
    for bad in (0, N + 1):
        with pytest.raises(LiteLVLMError, match="1 <= K"):
            select("litelvlm", inp, bad)
    with pytest.raises(LiteLVLMError, match="inside the LLM"):
        select("fastv", inp, 3)
    assert {"litelvlm", "clip_topsim", "random", "vispruner", "visionzip", "fastv", "llm-attention"} <= set(
        available_methods())
    assert get_method("fastv").kind == "llm" and get_method("litelvlm").needs_text
