"""The toy CLIP's training batches: true positives, hard negatives false in their own scene, and a
truth table that masks exactly the captions true of another image."""

from __future__ import annotations

import copy
import dataclasses

import numpy as np
import pytest
import torch

from litelvlm.clip.random_init import write_clip_tokenizer
from litelvlm.toy.loss import contrastive_loss
from litelvlm.toy.options import ToyTrainArgs
from litelvlm.toy.samplers import BatchSampler
from litelvlm.toy.scene_sets import _strip, render_pixels
from litelvlm.toy.scenes import Expression, make_scene, one_attribute_counterfactuals, referring_expressions


def test_one_attribute_counterfactuals_are_false_and_one_change_away():
    for i in range(20):
        scene = make_scene(7, i)
        for t in range(len(scene.objects)):
            expr = referring_expressions(scene, t)[0]
            cfs = one_attribute_counterfactuals(scene, expr)
            assert cfs and len(set(cfs)) == len(cfs)
            for e in cfs:
                assert not scene.is_true(e)
                changed = sum(a != b for a, b in zip((e.shape, e.colour, e.size, e.cell),
                                                     (expr.shape, expr.colour, expr.size, expr.cell)))
                assert changed == 1


def test_batch_sampler_positives_negatives_and_truth(tmp_path):
    full = [make_scene(7, i, 112) for i in range(12)]
    scenes = [_strip(s) for s in full]
    pixels = render_pixels([s.image for s in full], 56)
    a = ToyTrainArgs(batch_size=6, positives=2, hard_negatives=3)
    tok = write_clip_tokenizer(tmp_path / "tok")
    sampler = BatchSampler(scenes, pixels, tok, a)
    rng = np.random.default_rng(0)
    px, (ids, mask), owner, truth = sampler(rng)
    assert px.shape == (6, 3, 56, 56) and px.dtype == torch.float32
    n_pos = len(owner)
    assert n_pos == 12 and truth.shape == (6, n_pos * 4) and ids.shape[0] == n_pos * 4
    # every positive is true of its own image; every hard negative is false of the image it came from
    assert truth[owner, torch.arange(n_pos)].all()
    neg_owner = owner.repeat_interleave(a.hard_negatives)
    assert not truth[neg_owner, n_pos + torch.arange(n_pos * 3)].any()
    # cached tokenisation equals the tokenizer's own output
    texts = [tok.decode(r[m.bool()], skip_special_tokens=True) for r, m in zip(ids[:3], mask[:3])]
    again = tok(texts)["input_ids"]
    for r, m, want in zip(ids[:3], mask[:3], again):
        assert r[m.bool()].tolist() == want
    # the same seed gives the same batch
    px2, (ids2, _), owner2, truth2 = BatchSampler(scenes, pixels, tok, a)(np.random.default_rng(0))
    assert torch.equal(ids, ids2) and torch.equal(owner, owner2) and torch.equal(truth, truth2)
    loss = contrastive_loss(torch.randn(6, n_pos * 4), owner, truth)
    assert torch.isfinite(loss) and loss > 0


def test_binding_negatives_take_values_from_other_objects_first(tmp_path):
    from litelvlm.toy.samplers import is_binding

    full = [make_scene(7, i, 112) for i in range(10)]
    scenes = [_strip(s) for s in full]
    a = ToyTrainArgs(batch_size=4, positives=2, hard_negatives=4, binding_negatives=1.0)
    sampler = BatchSampler(scenes, render_pixels([s.image for s in full], 56),
                           write_clip_tokenizer(tmp_path / "tok"), a)
    rng = np.random.default_rng(0)
    seen_plain = 0
    for i, scene in enumerate(scenes):
        for t in range(len(scene.objects)):
            expr = sampler.expression(i, t, rng)
            pool = one_attribute_counterfactuals(scene, expr)
            binding = [e for e in pool if is_binding(scene, expr, e)]
            negs = sampler.negatives(i, expr, rng, 4)
            assert len(negs) == len(set(negs)) == 4 and not any(scene.is_true(e) for e in negs)
            k = min(4, len(binding))
            assert all(e in binding for e in negs[:k])  # binding counterfactuals first, as many as asked
            seen_plain += sum(e not in binding for e in negs)
            for e in binding:  # the changed value is another object's
                field = next(f for f in ("shape", "colour", "size", "cell") if getattr(e, f)
                             != getattr(expr, f))
                assert any(getattr(o, field) == getattr(e, field) for o in scene.objects)
    assert seen_plain > 0  # topped up with the other counterfactuals where too few bind
    # with share 0 the draw is the plain uniform one
    plain = BatchSampler(scenes, sampler.pixels, sampler.tokenizer,
                         ToyTrainArgs(hard_negatives=4, binding_negatives=0.0))
    expr = plain.expression(0, 0, np.random.default_rng(1))
    pool = one_attribute_counterfactuals(scenes[0], expr)
    want = [pool[j] for j in np.random.default_rng(2).choice(len(pool), size=4, replace=False)]
    assert plain.negatives(0, expr, np.random.default_rng(2), 4) == want


def test_build_scenes_same_in_worker_processes():
    from litelvlm.toy.scene_sets import build_scenes, build_warmup_scenes

    px0, sc0 = build_scenes(7, 70, 112, 56, "x")
    px2, sc2 = build_scenes(7, 70, 112, 56, "x", workers=2)
    assert px0.shape == (70, 3, 56, 56) and px0.dtype == torch.uint8 and torch.equal(px0, px2)
    assert [s.object_codes().tolist() for s in sc0] == [s.object_codes().tolist() for s in sc2]
    want = make_scene(7, 69, 112)
    assert torch.equal(px0[69], render_pixels([want.image], 56)[0])
    assert sc0[69].object_codes().tolist() == want.object_codes().tolist() and sc0[69].image.size == 0
    _, warm = build_warmup_scenes(3, 112, 56, workers=1)
    assert [len(s.objects) for s in warm] == [1, 1, 1]
    _, warm2 = build_warmup_scenes(3, 112, 56, objects=2)
    assert [len(s.objects) for s in warm2] == [2, 2, 2] and all(s.objects[0].cell != s.objects[1].cell
                                                                for s in warm2)


def test_training_loader_worker_gives_the_same_batches(tmp_path):
    from litelvlm.toy.samplers import PositionSampler, training_loader

    full = [make_scene(7, i, 112) for i in range(12)]
    scenes = [_strip(s) for s in full]
    pixels = render_pixels([s.image for s in full], 56)
    tok = write_clip_tokenizer(tmp_path / "tok")
    runs = []
    for workers in (0, 1):
        a = ToyTrainArgs(batch_size=4, positives=2, hard_negatives=3, steps=6, position_warmup=2,
                         position_mix=0.5, binding_negatives=0.5, workers=workers)
        loader = training_loader(a, BatchSampler(scenes, pixels, tok, a),
                                 PositionSampler(scenes, pixels, tok, a, colour_p=0.5),
                                 PositionSampler(scenes, pixels, tok, a, colour_p=1.0, size_p=0.3))
        runs.append(list(loader))
    assert len(runs[0]) == len(runs[1]) == 6
    for b0, b1 in zip(*runs):
        assert type(b0) is type(b1) and b0._fields == b1._fields
        for f in b0._fields:
            x0, x1 = (b0.text, b1.text) if f == "text" else ((getattr(b0, f),), (getattr(b1, f),))
            assert all(torch.equal(u, v) for u, v in zip(x0, x1)), f


@pytest.mark.parametrize("buckets,attention", [(1, "sdpa"), (2, "eager"), (3, "eager"), (8, "sdpa")])
def test_clip_logits_equal_the_model_forward_with_repeated_captions(tmp_path, buckets, attention):
    """Encoding each distinct caption once, in length buckets, with either attention kernel, gives
    CLIPModel's own logits (default kernel) and the same gradients."""
    from transformers import AutoModel, CLIPModel

    from litelvlm.clip.random_init import hf_config
    from litelvlm.toy.loss import clip_logits
    from litelvlm.toy.model import arch_of

    config = hf_config(arch_of(ToyTrainArgs(image_size=56, patch_size=28, vision_layers=1, text_layers=1,
                                            text_width=32, embed_dim=16)))
    torch.manual_seed(0)
    model = CLIPModel(copy.deepcopy(config))
    torch.manual_seed(0)
    trained = AutoModel.from_config(copy.deepcopy(config), attn_implementation=attention)  # as toy-train does
    assert trained.config._attn_implementation == attention and model.config._attn_implementation == "sdpa"
    tok = write_clip_tokenizer(tmp_path / "tok")
    texts = ["the red circle", "the big blue star at the top", "the red circle", "the cross",
             "the big blue star at the top", "the red circle", "the small green square at the bottom left"]
    enc = tok(texts, padding=True, return_tensors="pt")
    px = torch.randn(3, 3, 56, 56)
    ref = model(input_ids=enc.input_ids, attention_mask=enc.attention_mask, pixel_values=px).logits_per_image
    ref.square().sum().backward()
    grads = {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}
    got = clip_logits(trained, px, enc.input_ids, enc.attention_mask, buckets=buckets)
    assert got.shape == (3, 7) and torch.allclose(got, ref, atol=1e-5)
    got.square().sum().backward()
    for n, g in grads.items():
        assert torch.allclose(trained.get_parameter(n).grad, g, atol=1e-4, rtol=1e-3), n


def test_sampler_token_table_grows_and_pads_each_batch_to_its_longest(tmp_path):
    """Expressions are tokenised once into a growing table; a batch is padded only to its longest."""
    full = [make_scene(7, i, 112) for i in range(4)]
    tok = write_clip_tokenizer(tmp_path / "tok")
    sampler = BatchSampler([_strip(s) for s in full], render_pixels([s.image for s in full], 56), tok,
                           ToyTrainArgs())
    short = [Expression("circle"), Expression("star", "red")]
    longer = [Expression("cross", "blue", "small", (2, 2)), Expression("circle"), Expression("square", "red")]
    for batch in (short, longer, short + longer):
        ids, mask = sampler.encode(batch)
        want = tok([e.text for e in batch])["input_ids"]
        assert ids.shape == (len(batch), max(len(w) for w in want))
        for r, m, w in zip(ids, mask, want):
            assert r[m.bool()].tolist() == w and not m[len(w):].any()
    assert list(sampler.rows(short + longer)) == [0, 1, 2, 0, 3]  # one row per distinct expression


@pytest.mark.parametrize("tower", ["vision", "text"])
def test_sharpen_attention_init_scales_only_that_towers_queries_and_keys(tower):
    from transformers import CLIPModel

    from litelvlm.clip.random_init import hf_config
    from litelvlm.toy.model import arch_of, sharpen_attention_init

    torch.manual_seed(0)
    model = CLIPModel(hf_config(arch_of(ToyTrainArgs(vision_layers=1, text_layers=1, embed_dim=16))))
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    sharpen_attention_init(model, 4.0, tower)
    for n, p in model.named_parameters():
        scaled = n.startswith(f"{tower}_model.") and n.endswith(("q_proj.weight", "k_proj.weight"))
        assert torch.equal(p, before[n] * 4.0 if scaled else before[n]), n
    assert any(n.endswith("q_proj.weight") and n.startswith(f"{tower}_model.") for n in before)


def test_interaction_share_is_zero_for_additive_codes_and_one_for_pure_interactions():
    from litelvlm.toy.evaluation import interaction_share

    torch.manual_seed(0)
    content, position = torch.randn(6, 1, 32), torch.randn(1, 9, 32)
    assert interaction_share(content + position) < 1e-10
    pure = torch.randn(6, 9, 32)
    pure = pure - pure.mean(0, keepdim=True) - pure.mean(1, keepdim=True) + pure.mean((0, 1), keepdim=True)
    assert abs(interaction_share(pure) - 1.0) < 1e-6
    mixed = interaction_share(content + position + 0.3 * pure)
    assert 0.0 < mixed < 0.5


def test_sincos_position_init_encodes_row_and_column():
    from transformers import CLIPModel

    from litelvlm.clip.random_init import hf_config
    from litelvlm.toy.model import arch_of, sincos_position_init

    torch.manual_seed(0)
    model = CLIPModel(hf_config(arch_of(ToyTrainArgs(image_size=112, patch_size=28, vision_layers=1,
                                                     text_layers=1, embed_dim=16))))
    sincos_position_init(model)
    pe = model.vision_model.embeddings.position_embedding.weight.detach()
    half = pe.shape[1] // 2
    assert torch.equal(pe[0], torch.zeros_like(pe[0]))  # CLS
    grid = pe[1:].view(4, 4, -1)
    # the first half of the channels depends on the row only, the second half on the column only
    assert torch.allclose(grid[:, :1, :half], grid[:, :, :half])
    assert torch.allclose(grid[:1, :, half:], grid[:, :, half:])
    assert len({tuple(r.round(decimals=4).tolist()) for r in pe[1:]}) == 16  # all positions distinct
    assert model.vision_model.embeddings.position_embedding.weight.requires_grad


def test_position_sampler_moves_only_the_cell_and_prefers_occupied_cells(tmp_path):
    from litelvlm.toy.samplers import PositionSampler

    full = [make_scene(7, i, 112) for i in range(8)]
    scenes = [_strip(s) for s in full]
    a = ToyTrainArgs(batch_size=4, positives=2, hard_negatives=3)
    sampler = PositionSampler(scenes, render_pixels([s.image for s in full], 56),
                              write_clip_tokenizer(tmp_path / "tok"), a, colour_p=1.0)
    rng = np.random.default_rng(0)
    for i, scene in enumerate(scenes):
        occupied = {o.cell for o in scene.objects}
        for t, obj in enumerate(scene.objects):
            expr = sampler.expression(i, t, rng)
            assert (expr.shape, expr.colour, expr.cell) == (obj.shape, obj.colour, obj.cell)
            assert scene.refers_to(expr) == [t]
            negs = sampler.negatives(i, expr, rng, 3)
            assert len(negs) == 3 and not any(scene.is_true(e) for e in negs)
            moved = [e for e in negs if (e.shape, e.colour, e.size) == (expr.shape, expr.colour, expr.size)]
            free_occupied = [c for c in occupied - {expr.cell}
                             if not scene.is_true(Expression(expr.shape, expr.colour, expr.size, c))]
            # occupied cells come first: as many as there are (up to n) before any empty cell
            assert [e.cell in occupied for e in moved][:len(free_occupied)] == [True] * min(
                3, len(free_occupied))
    # a batch of it is a normal training batch: every positive true of its image, no negative true
    px, (ids, _), owner, truth = sampler(np.random.default_rng(1))
    n_pos = len(owner)
    assert truth[owner, torch.arange(n_pos)].all()
    assert not truth[owner.repeat_interleave(3), n_pos + torch.arange(n_pos * 3)].any()


def test_toy_train_end_to_end_tiny(tmp_path):
    """A few steps of the whole command (warm-up and position batches included) write a folder that
    loads through the public path, with curve, metrics and card."""
    import json

    from litelvlm.clip import load_clip
    from litelvlm.toy.train import train

    a = ToyTrainArgs(out=str(tmp_path / "m"), steps=4, batch_size=4, hard_negatives=2, train_scenes=8,
                     eval_scenes=6, final_eval_scenes=6, eval_every=2, image_size=56, patch_size=28,
                     vision_width=32, vision_layers=1, vision_heads=4, text_width=32, text_layers=1,
                     embed_dim=16,
                     pos_init="sincos", position_warmup=2, warmup_scenes=4, position_mix=0.5, threads=1)
    before = torch.get_num_threads()
    metrics = train(a)
    assert torch.get_num_threads() == before  # --threads applies to the run only
    out = tmp_path / "m"
    assert 0.0 <= metrics["heldout_top1_of_8"] <= 1.0
    assert json.loads((out / "training_metrics.json").read_text())["heldout_items"] == metrics[
        "heldout_items"]
    assert "--position-warmup 2" in (out / "MODEL_CARD.md").read_text()
    assert (out / "training_curve.png").stat().st_size > 0
    assert len((out / "training_curve.csv").read_text().splitlines()) == 1 + 4
    assert not (out / ".tokenizer-tmp").exists() and not (tmp_path / ".m.partial").exists()
    assert all(f.stat().st_mode & 0o044 == 0o044 for f in out.iterdir())  # readable by all, like any result
    clip = load_clip(str(out), "hf")
    assert clip.grid == (2, 2) and clip.modules().config.vision_config.num_attention_heads == 4


def test_toy_train_rejects_bad_arguments_before_any_work(tmp_path):
    from litelvlm.errors import LiteLVLMError
    from litelvlm.toy.train import train

    for bad, flag in (({"vision_heads": 5}, "--vision-heads"), ({"position_mix": 1.5}, "--position-mix"),
                      ({"image_size": 100}, "--patch-size"),
                      ({"binding_negatives": -0.1}, "--binding-negatives"),
                      ({"workers": 2}, "--workers"), ({"warmup_objects": 0}, "--warmup-objects"),
                      ({"positives": 0}, "--positives")):
        with pytest.raises(LiteLVLMError, match=flag):
            train(ToyTrainArgs(out=str(tmp_path / "m"), **bad))
        assert not (tmp_path / "m").exists()


def test_toy_train_interrupted_leaves_nothing_partial(tmp_path, monkeypatch):
    from litelvlm.toy import train as toy_train

    (tmp_path / "m").mkdir()
    (tmp_path / "m" / "notes.txt").write_text("mine")

    def crash(a, work):
        work.mkdir(parents=True)
        (work / "model.safetensors").write_bytes(b"half")
        raise KeyboardInterrupt

    monkeypatch.setattr(toy_train, "_train", crash)
    with pytest.raises(KeyboardInterrupt):
        toy_train.train(ToyTrainArgs(out=str(tmp_path / "m")))
    assert sorted(p.name for p in tmp_path.rglob("*")) == ["m", "notes.txt"]


def test_two_object_warmup_negatives_name_the_other_objects_cell_first(tmp_path):
    from litelvlm.toy.samplers import PositionSampler
    from litelvlm.toy.scene_sets import build_warmup_scenes

    pixels, scenes = build_warmup_scenes(8, 112, 56, objects=2)
    a = ToyTrainArgs(batch_size=4, positives=1, hard_negatives=3)
    sampler = PositionSampler(scenes, pixels, write_clip_tokenizer(tmp_path / "tok"), a, colour_p=0.5)
    rng = np.random.default_rng(0)
    checked = 0
    for i, scene in enumerate(scenes):
        for t, obj in enumerate(scene.objects):
            expr = sampler.expression(i, t, rng)
            negs = sampler.negatives(i, expr, rng, 3)
            other = scene.objects[1 - t]
            if not scene.is_true(dataclasses.replace(expr, cell=other.cell)):
                assert negs[0].cell == other.cell  # the binding negative comes first
                checked += 1
            assert not any(scene.is_true(e) for e in negs) and all(e.cell != obj.cell for e in negs)
    assert checked >= 3
