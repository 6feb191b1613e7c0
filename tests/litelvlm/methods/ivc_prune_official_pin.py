"""The official side of the IVC-Prune tests under the release IVC-Prune's bundled transformers modifies
(``tests/pinned_env.py``: transformers 4.51.3), every case in one launch of the pinned interpreter
(``tests/pinned_scripts/batch.py``): ``llama_ivc_official.py`` on GLaMM's LLaMA
(``test_ivc_prune_under_the_official_pin.py``) and ``ivc_prune_qwen_official.py`` on the tiny UniPixel
(``test_ivc_prune_qwen_under_the_official_pin.py``; its every-budget sweep, ``slow``, launches its own)."""

from __future__ import annotations

import functools
import json
import tempfile
from pathlib import Path

import torch
from transformers import LlamaForCausalLM

from litelvlm.glamm.config import get_arch, llama_config, with_vocab
from tests.litelvlm.glamm.test_config_under_the_official_pin import FIELDS
from tests.pinned_env import run_pinned

MODEL = "unipixel-tiny-random:0"
DTYPES = ("float32", "bfloat16")
#: the value projections' scale on both sides (as ``test_ivc_prune_qwen_official.py``: similarities spread)
VALUE_SCALE = 8
#: GLaMM's LLaMA: (architecture, sequence length, dtype)
LLAMA_CASES = [("tiny", 37, torch.float32), ("tiny", 37, torch.bfloat16), ("scaled", 131, torch.float32),
               ("scaled", 131, torch.bfloat16)]


@functools.cache
def qwen_pipe(dtype: str):
    """The tiny UniPixel in ``dtype``, its value projections scaled by :data:`VALUE_SCALE`."""
    from litelvlm.registry.families import load_pipeline

    p = load_pipeline(MODEL, dtype=getattr(torch, dtype))
    with torch.no_grad():
        for layer in p.language_model.layers:
            layer.self_attn.v_proj.weight.mul_(VALUE_SCALE)
    return p


def _image(h, w, seed):
    from PIL import Image

    g = torch.Generator().manual_seed(seed)
    return Image.fromarray((torch.rand(h, w, 3, generator=g) * 255).to(torch.uint8).numpy())


def qwen_sizes(every: bool) -> list[tuple[int, int]]:
    return [(123, 57), (75, 101), (9, 13)] if every else [(123, 57)]


def qwen_targets(n: int, every: bool) -> list:
    """None (the official count), then the edges and the paper's ratios (64, 128, 192 of 576), or every
    budget."""
    rest = range(1, n + 1) if every else sorted({1, 5, *(round(n * k / 576) for k in (64, 128, 192)), n})
    return [None, *rest]


def _llama_cases() -> tuple[list, list]:
    """(ours: (cos, sin, hidden states, last) per case, the official side's cases) of :data:`LLAMA_CASES`."""
    cases, ours = [], []
    for k, (name, length, dtype) in enumerate(LLAMA_CASES):
        arch = get_arch(name)
        arch = with_vocab(arch, arch.vocab_size or 512)
        torch.manual_seed(k)
        model = LlamaForCausalLM(llama_config(arch)).eval()
        model.config._attn_implementation = "eager"
        state = model.state_dict()
        rotary = model.model.rotary_emb
        kept = {n: b.clone() for n, b in rotary.named_buffers()}
        model = model.to(dtype)
        for n, b in kept.items():  # the pipeline keeps the rotary frequencies in float32
            setattr(rotary, n, b)
        x = torch.randn(1, length, arch.llm_hidden, generator=torch.Generator().manual_seed(k)).to(dtype)
        with torch.no_grad():
            cos, sin = rotary(x, torch.arange(length)[None])
            got = model.model(inputs_embeds=x, output_hidden_states=True)
        ours.append((cos, sin, got.hidden_states, got.last_hidden_state))
        config = {f: getattr(model.config, f) for f in FIELDS}
        config.update(num_key_value_heads=model.config.num_key_value_heads,
                      rope_theta=model.config.rope_parameters["rope_theta"])
        cases.append({"config": config, "state": state, "x": x})
    return ours, cases


def _qwen_spec(dtype: str, every: bool) -> tuple[list, dict]:
    """(the prepared inputs, the official side's spec) of the tiny UniPixel in ``dtype``."""
    pipe, cases = qwen_pipe(dtype), []
    preps = [pipe.prepare(_image(*s, seed=s[0]), ["a red cup on the table"]) for s in qwen_sizes(every)]
    for prep in preps:
        ctx = pipe.context(prep)
        cases.append({"input_ids": prep.input_ids, "video_grid_thw": prep.grid_thw,
                      "second_per_grid_ts": prep.second_per_grid_ts, "embeds": ctx.embeds,
                      "image_start": ctx.image_start, "num_visual": ctx.num_visual, "layer": 1,
                      "targets": qwen_targets(ctx.num_visual, every)})
    return preps, {"dtype": dtype, "value_scale": VALUE_SCALE, "cases": cases}


@functools.cache
def official_side(every: bool) -> dict:
    """``llama``: (ours, the official results) of :data:`LLAMA_CASES` (not with ``every``); ``qwen``: dtype ->
    {versions, missing_keys, cases: [(prepared input, the official results)]}."""
    from litelvlm.unipixel.checkpoint import random_unipixel_dir

    folder = str(random_unipixel_dir("tiny", 0))
    with tempfile.TemporaryDirectory(prefix="ivc-pin-") as tmp:
        tmp, jobs, preps = Path(tmp), [], {}
        ours = None
        if not every:
            ours, cases = _llama_cases()
            torch.save(cases, tmp / "llama.pt")
            jobs.append(["llama_ivc_official.py", str(tmp / "llama.pt"), str(tmp / "llama-out.pt")])
        for dtype in DTYPES:
            preps[dtype], spec = _qwen_spec(dtype, every)
            torch.save(spec, tmp / f"{dtype}.pt")
            jobs.append(["ivc_prune_qwen_official.py", folder, str(tmp / f"{dtype}.pt"),
                         str(tmp / f"{dtype}-out.pt")])
        (tmp / "jobs.json").write_text(json.dumps(jobs))
        run_pinned("ivc-prune", "batch.py", str(tmp / "jobs.json"))
        qwen = {}
        for dtype in DTYPES:
            out = torch.load(tmp / f"{dtype}-out.pt", weights_only=False)
            qwen[dtype] = {"versions": out["versions"], "missing_keys": out["missing_keys"],
                           "cases": list(zip(preps[dtype], out["cases"], strict=True))}
        llama = None if every else (ours, torch.load(tmp / "llama-out.pt", weights_only=False))
    return {"llama": llama, "qwen": qwen}
