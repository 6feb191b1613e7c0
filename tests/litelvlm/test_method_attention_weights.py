"""Each method's ``attention_weights`` (``litelvlm.method.Method``): the LLM decoder layers whose attention
weights it declares it reads are the layers it reads, method by method, on tiny random models of both
backbones (LLaVA's Llama: GLaMM; Qwen2.5-VL: Sa2VA, where the variants run).

The spy: a decoder layer's ``q_proj`` called outside that layer's own attention forward. Every attention
weight a method reads is recomputed from the layer's own modules, by ``LLMContext.attention_rows`` /
``attention_rows_at`` (FastV, SparseVLM, VScan, the LLM-attention oracle) or by hand (VScan's Qwen2.5-VL
middle layer), and each needs that layer's queries; the methods that read keys (DART) or values (IVC-Prune)
alone call no ``q_proj``."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import numpy as np
import pytest
import torch
from PIL import Image

from litelvlm.commands.select import methods_record
from litelvlm.errors import LiteLVLMError
from litelvlm.methods import get_method, method_names
from litelvlm.registry.families import load_pipeline

MODELS = ("tiny-random:0", "sa2va-tiny-random:0")
#: what a family refuses outright (the Sa2VA family offers no vision-tower stage, nor a CLIP method on CLIP's
#: own patch grid)
REFUSED = {("sa2va-tiny-random:0", "flowcut"), ("sa2va-tiny-random:0", "vitcop")}
#: what the tiny Qwen LLM (2 layers) is too shallow for at the default layer: the IPCV compositions prune from
#: LLM layer 3 (the IPCV scripts' ``pruned_layer``); the tiny GLaMM runs them
TOO_SHALLOW = {("sa2va-tiny-random:0", "ipcv+fastv"), ("sa2va-tiny-random:0", "ipcv+dart")}
CASES = [(model, name) for model in MODELS for name in method_names()
         if (model, name) not in REFUSED | TOO_SHALLOW]


@contextlib.contextmanager
def layers_read(lm) -> Iterator[set[int]]:
    """Within: the decoder layers of ``lm`` whose ``q_proj`` ran outside the layer's own attention forward."""
    read: set[int] = set()
    inside: list = []
    handles = []

    def enter(module, args):
        inside.append(module)

    def leave(module, args, output):
        inside.pop()

    for i, layer in enumerate(lm.layers):
        def query(module, args, output, i=i):
            if not inside:
                read.add(i)

        handles += [layer.self_attn.register_forward_pre_hook(enter),
                    layer.self_attn.register_forward_hook(leave),
                    layer.self_attn.q_proj.register_forward_hook(query)]
    try:
        yield read
    finally:
        for h in handles:
            h.remove()


@pytest.fixture(scope="module")
def prepared():
    """``prepared(model)``: (pipeline, one prepared image), each model loaded once in this module."""
    pipes: dict = {}

    def get(model: str):
        if model not in pipes:
            pipe = load_pipeline(model)
            image = Image.fromarray(np.random.default_rng(0).integers(0, 255, (160, 200, 3), dtype=np.uint8))
            pipes[model] = pipe, pipe.prepare(image, ["the dog on the left"])
        return pipes[model]

    return get


@pytest.mark.parametrize("model,name", CASES)
def test_a_method_reads_the_layers_it_declares(prepared, model, name):
    pipe, prep = prepared(model)
    spec = pipe.spec(name)
    n, layers = pipe.num_visual(prep), len(pipe.language_model.layers)
    with torch.no_grad(), layers_read(pipe.language_model) as read:
        pipe.ground(prep, name, None if spec.baseline else n // 4)   # a budget that prunes
    assert sorted(read) == spec.attention_layers(layers), (name, spec.backbone)


def test_the_refused_cases_are_refused(prepared):
    assert all(prepared(model)[0].method_error(name) for model, name in REFUSED)


@pytest.mark.parametrize("model,name", sorted(TOO_SHALLOW))
def test_a_layer_past_the_llm_is_one_error_naming_the_range(prepared, model, name):
    pipe, prep = prepared(model)
    layers = len(pipe.language_model.layers)
    with torch.no_grad(), pytest.raises(LiteLVLMError, match=rf"layer K must be in 1\.\.{layers}; got 3"):
        pipe.ground(prep, name, pipe.num_visual(prep) // 4)


def test_declarations_on_the_papers_depths():
    """At 32 layers (LLaVA-1.5-7B, GLaMM-7B) the official layers; at 28 (Qwen2.5-VL-7B) the variants' own."""
    paper = {r["name"]: r["attention_weights"] for r in methods_record("glamm-7b-random:0")["methods"]}
    assert paper["fastv"] == [1] and paper["sparsevlm"] == [2, 6, 15] and paper["vscan"] == [16]
    assert paper["llm-attention"] == [16] and paper["ipcv+fastv"] == [2]   # the IPCV scripts' pruned_layer 3
    readers = {"fastv", "sparsevlm", "vscan", "llm-attention", "ipcv+fastv"}
    assert {k for k, v in paper.items() if v} == readers
    qwen = {name: get_method(name, "qwen2.5-vl").attention_layers(28) for name in method_names()}
    assert qwen["sparsevlm"] == [2, 5, 13] and qwen["vscan"] == [14] and qwen["fastv"] == [1]
    assert qwen["ipcv+fastv"] == [2]
    assert {k for k, v in qwen.items() if v} == readers


def test_tower_readers_are_declared_apart():
    towers = {name for name in method_names() if get_method(name).tower_attention_weights}
    assert towers == {"litelvlm", "litelvlm-ctx", "litelvlm-context", "clip_topsim", "vispruner", "visionzip",
                      "prumerge", "prumerge+", "hiprune", "flowcut", "vscan", "vitcop"}
    assert all(get_method(name).flash_compatible for name in method_names())
