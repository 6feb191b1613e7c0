"""The official side of the LLaVA-based methods under their repositories' pins (``tests/pinned_env.py``):
transformers 4.31.0 (FastV, LLaVA-PruMerge) and 4.37.2 (LLaVA-1.5 in VisPruner, CDPruner, DivPrune, HiPrune,
SparseVLM, VScan; VisionZip installs "the LLaVA environment"). Every case of a pin in one launch of the pinned
interpreter (``tests/pinned_scripts/batch.py``), once a test process:

* ``clip_vision_official.py``: random transformers CLIP towers (:data:`TOWERS`) run by the pinned
  ``CLIPVisionModelWithProjection``: its ``hidden_states``, ``attentions`` (``output_attentions=True``) and
  what forward hooks on its ``q_proj`` / ``k_proj`` see;
* ``fastv_official.py``: the tiny GLaMM's LLaMA in FastV's loop on 4.31's own decoder layers;
* ``llama_layers_official.py``: the tiny GLaMM's LLaMA (:data:`LLM_CASES`) on 4.37's own decoder layers, SDPA
  and eager, and the keys after 4.37's RoPE;
* ``clip_towers_official.py``: the tiny GLaMM's CLIP (:func:`clip_cases`), both towers under 4.28.1 (the
  ``glamm`` pin: LiteLVLM's reads, :func:`glamm_428`), its text tower under 4.37.2 (CDPruner's text embeds);
* ``flowcut_official.py``: FlowCut's official patched forwards (``../shared/official/FlowCut``) on 4.37.2's
  CLIP modules (:data:`FLOWCUT_TOWERS`; every budget of ViT-L's depth: :func:`flowcut_437_sweep`, slow).

:class:`PinnedTower` hands the pinned outputs to this project's selectors as a CLIP trace (the q/k/v the
selectors recompute come from the same modules), so that a method's selection is compared with the official
rule on what the pinned tower returned.
"""

from __future__ import annotations

import functools
import json
import tempfile
from pathlib import Path
from types import SimpleNamespace

import torch

from litelvlm.clip.traces import VisionTrace
from litelvlm.lvlm.numerics import set_attention
from litelvlm.pruning import SelectorInputs
from tests.litelvlm.methods.test_flowcut_official import _tower as flowcut_tower
from tests.official_code import OFFICIAL
from tests.pinned_env import run_pinned

#: name -> (grid, width, heads, blocks): VisPruner's and VisionZip's 8x8 tower
#: (``test_vispruner_visionzip_official.HFTower``), HiPrune's and PruMerge's 24x24 one (LLaVA-1.5's grid, the
#: official literals 24 and 575; HiPrune's object layer 9), VScan's 24-block one (its blocks 5 and -2), and
#: a tower of CLIP ViT-L's head size (64) for the towers' own outputs
TOWERS = {"small": (8, 48, 4, 3), "llava": (24, 48, 4, 10), "vscan": (24, 32, 4, 24),
          "head64": (8, 128, 2, 3)}
#: the dtypes each tower runs in under 4.37
DTYPES = {"small": (torch.float32, torch.bfloat16), "llava": (torch.float32, torch.bfloat16),
          "vscan": (torch.float32, torch.bfloat16),
          "head64": (torch.float32, torch.bfloat16)}
#: FastV: the layers K whose rows rank, and the (K, budget) loops run to the end
FASTV_KS = (1, 2, 3)
FASTV_LOOPS = ((2, 144), (2, 1), (3, 575))
#: the LLM-side cases under 4.37: (sequence length, dtype)
LLM_CASES = ((37, torch.float32), (37, torch.bfloat16), (611, torch.bfloat16))
#: the LlamaConfig fields 4.31 takes (its rotary base is 10,000; no rope_theta)
#: the CLIP config fields both pins take (the towers' architecture)
CLIP_VISION_FIELDS = ("hidden_size", "intermediate_size", "projection_dim", "num_hidden_layers",
                      "num_attention_heads", "num_channels", "image_size", "patch_size", "hidden_act",
                      "layer_norm_eps")
CLIP_TEXT_FIELDS = ("vocab_size", "hidden_size", "intermediate_size", "projection_dim", "num_hidden_layers",
                    "num_attention_heads", "max_position_embeddings", "hidden_act", "layer_norm_eps",
                    "pad_token_id", "bos_token_id", "eos_token_id")
#: FlowCut under 4.37: (blocks, image size) of ``test_flowcut_official``'s towers (a 5x5 grid; the official
#: schedule prunes after blocks 0 | 0, 2 | 1, 3) and the budgets of the default suite (the edges)
FLOWCUT_TOWERS = ((3, 70), (5, 70), (6, 70))
FLOWCUT_BUDGETS = (1, 2, 3, 12, 13, 23, 24, 25)
FLOWCUT = OFFICIAL / "FlowCut" / "flowcut"   # TungChintao/FlowCut @a2ecd24
LLAMA_FIELDS = ("vocab_size", "hidden_size", "intermediate_size", "num_hidden_layers", "num_attention_heads",
                "num_key_value_heads", "hidden_act", "max_position_embeddings", "rms_norm_eps",
                "bos_token_id", "eos_token_id", "pad_token_id", "tie_word_embeddings")


class PinnedTower:
    """A random transformers CLIP tower (transformers 5, eager) as a CLIP backend whose trace holds the
    pinned tower's ``hidden_states``; ``pinned`` is the pinned side's result for it."""

    name = "random-clip-pinned"

    def __init__(self, kind: str, dtype: torch.dtype, seed: int = 0):
        from transformers import CLIPVisionConfig, CLIPVisionModelWithProjection

        grid, width, heads, blocks = TOWERS[kind]
        self.grid, self.vision_heads, self.dtype = grid, heads, dtype
        self.config = dict(hidden_size=width, intermediate_size=2 * width, num_hidden_layers=blocks,
                           num_attention_heads=heads, image_size=14 * grid, patch_size=14)
        torch.manual_seed(seed)
        model = CLIPVisionModelWithProjection(CLIPVisionConfig(**self.config, attn_implementation="eager"))
        for layer in model.vision_model.encoder.layers:  # peaked [CLS] rows, as CLIP's
            layer.self_attn.q_proj.weight.data.mul_(4.0)
        self.model = model.eval().to(dtype)
        g = torch.Generator().manual_seed(seed)
        self.pixels = torch.randn(1, 3, 14 * grid, 14 * grid, generator=g).to(dtype)
        self.features = torch.randn(1, grid * grid, 24, generator=g).to(dtype)   # VScan's projector outputs
        self.pinned = None

    def case(self) -> dict:
        return {"config": self.config, "state": self.model.state_dict(), "pixels": self.pixels, "hook": -1}

    def own_hidden_states(self, clip_softmax: str = "official") -> tuple[torch.Tensor, ...]:
        """The tower's own ``hidden_states`` as this project's CLIP trace holds them under ``--attn eager``
        and ``clip_softmax`` (``official``: 4.x's eager kernel; ``float32``: transformers 5's)."""
        set_attention("eager", self.model, clip_softmax=clip_softmax)
        with torch.no_grad():
            return tuple(self.model.vision_model(pixel_values=self.pixels, output_hidden_states=True)
                         .hidden_states)

    @torch.no_grad()
    def vision_qkv(self, block, hidden):
        layer = self.model.vision_model.encoder.layers[block]
        x = layer.layer_norm1(hidden)
        return layer.self_attn.q_proj(x), layer.self_attn.k_proj(x), layer.self_attn.v_proj(x)

    def inputs(self) -> SelectorInputs:
        """The project's selector inputs on the pinned tower's ``hidden_states``."""
        return SelectorInputs(VisionTrace(hidden_states=self.pinned["hidden_states"],
                                          grid=(self.grid, self.grid), num_prefix_tokens=1, backend=self))


def _launch(pin: str, jobs: list[tuple[str, list]], tmp: Path, timeout: int = 600) -> list[dict]:
    """Run ``jobs`` (script, cases) under ``pin`` in one process (``timeout`` seconds at most): each job's
    saved result."""
    listed = []
    for k, (script, cases) in enumerate(jobs):
        torch.save(cases, tmp / f"{k}.pt")
        listed.append([script, str(tmp / f"{k}.pt"), str(tmp / f"{k}-out.pt")])
    (tmp / "jobs.json").write_text(json.dumps(listed))
    run_pinned(pin, "batch.py", str(tmp / "jobs.json"), timeout=timeout)
    return [torch.load(tmp / f"{k}-out.pt", weights_only=False) for k in range(len(jobs))]


def _attach(towers: list[PinnedTower], got: dict) -> None:
    for t, result in zip(towers, got["cases"], strict=True):
        t.pinned = result


def fastv_cases() -> list[tuple]:
    """(pipeline, prepared, context) of the tiny GLaMM with the official numerics in float32 and bfloat16, on
    the image of ``test_fastv_official.official_case``."""
    from PIL import Image

    from litelvlm.glamm import GlammPipeline

    out = []
    for dtype in (torch.float32, torch.bfloat16):
        p = GlammPipeline.from_model_string("tiny-random:0", dtype=dtype)
        g = torch.Generator().manual_seed(7)
        image = Image.fromarray((torch.rand(80, 120, 3, generator=g) * 255).to(torch.uint8).numpy())
        prep = p.prepare(image, ["the dog on the left", "a red cup"])
        out.append((p, prep, p.context(prep)))
    return out


def _fastv_case(pipe, ctx) -> dict:
    lm = pipe.model.language_model
    return {"config": {f: getattr(lm.config, f) for f in LLAMA_FIELDS},
            "state": {k: v for k, v in lm.state_dict().items() if not k.startswith("rotary_emb.")},
            "x": ctx.embeds, "sys_length": ctx.image_start, "image_length": ctx.num_visual,
            "ks": FASTV_KS, "ranks": list(range(1, ctx.num_visual + 1)), "loops": FASTV_LOOPS}


@functools.cache
def llava_431() -> SimpleNamespace:
    """Under 4.31.0: ``fastv`` (pipeline, prepared, context, the official result) per dtype; ``towers``
    (dtype -> :class:`PinnedTower` ``llava``, LLaVA-PruMerge's hooks on its last block)."""
    fastv = fastv_cases()
    towers = {dt: PinnedTower("llava", dt) for dt in (torch.float32, torch.bfloat16)}
    with tempfile.TemporaryDirectory(prefix="llava-431-") as tmp:
        got_fastv, got_clip = _launch("llava-4.31", [
            ("fastv_official.py", [_fastv_case(p, ctx) for p, _, ctx in fastv]),
            ("clip_vision_official.py", [t.case() for t in towers.values()])], Path(tmp))
    _attach(list(towers.values()), got_clip)
    return SimpleNamespace(versions=got_fastv["versions"],
                           fastv=[(*f, r) for f, r in zip(fastv, got_fastv["cases"], strict=True)],
                           towers=towers)


def llm_models() -> list[tuple]:
    """(transformers 5 ``LlamaModel`` of the tiny GLaMM architecture in the case's dtype, its float32 state,
    ``inputs_embeds``) for :data:`LLM_CASES`; the rotary frequencies kept in float32, as the bfloat16 pipeline
    keeps them."""
    from transformers import LlamaModel

    from litelvlm.glamm.config import get_arch, llama_config, with_vocab

    arch = get_arch("tiny")
    arch = with_vocab(arch, arch.vocab_size or 512)
    out = []
    for k, (length, dtype) in enumerate(LLM_CASES):
        torch.manual_seed(k)
        model = LlamaModel(llama_config(arch)).eval()
        state = {n: v for n, v in model.state_dict().items() if not n.startswith("rotary_emb.")}
        kept = {n: b.clone() for n, b in model.rotary_emb.named_buffers()}
        model = model.to(dtype)
        for n, b in kept.items():
            setattr(model.rotary_emb, n, b)
        x = torch.randn(1, length, arch.llm_hidden, generator=torch.Generator().manual_seed(k)).to(dtype)
        out.append((model, state, x))
    return out


@functools.cache
def clip_cases() -> dict:
    """dtype -> (the tiny GLaMM, a prepared 120 x 80 random image with two expressions, its pixels, the
    official text call's ids and mask), float32 and bfloat16: what LiteLVLM and CDPruner read from CLIP."""
    from PIL import Image

    from litelvlm.glamm import GlammPipeline

    out = {}
    for dtype in (torch.float32, torch.bfloat16):
        p = GlammPipeline.from_model_string("tiny-random:0", dtype=dtype)
        g = torch.Generator().manual_seed(11)
        image = Image.fromarray((torch.rand(80, 120, 3, generator=g) * 255).to(torch.uint8).numpy())
        prep = p.prepare(image, ["the dog on the left", "a red cup on the table"])
        pixels = p.clip.preprocess([image], processor=p.numerics.clip_preprocess)
        # LiteLVLM clip_encoder.py L104: text_tokenizer(text=..., return_tensors="pt", truncation=True,
        # padding=True)
        text = p.clip.tokenizer(text=prep.text.texts, return_tensors="pt", truncation=True, padding=True)
        out[dtype] = (p, prep, pixels, text)
    return out


def clip_case(dtype: torch.dtype, vision: bool) -> dict:
    """A ``clip_towers_official.py`` case of :func:`clip_cases`' model in ``dtype`` (both towers, or the
    text tower only)."""
    p, _, pixels, text = clip_cases()[dtype]
    config = p.clip.model.config
    return {"dtype": dtype, "state": p.clip.model.state_dict(),
            "vision_config": {f: getattr(config.vision_config, f) for f in CLIP_VISION_FIELDS},
            "text_config": {f: getattr(config.text_config, f) for f in CLIP_TEXT_FIELDS},
            "pixels": pixels if vision else None, "input_ids": text["input_ids"],
            "attention_mask": text["attention_mask"]}


def flowcut_cases(towers, budgets) -> list[tuple]:
    """(transformers 5 tower, pixels, embeddings after the pre-norm, the official side's case) per tower."""
    out = []
    for layers, size, *width in towers:
        vm, pixels, hidden0 = flowcut_tower(layers, size, *width)
        config = {f: getattr(vm.config, f) for f in CLIP_VISION_FIELDS if f != "projection_dim"}
        out.append((vm, pixels, hidden0, {
            "config": config, "state": {f"vision_model.{k}": v for k, v in vm.state_dict().items()},
            "pixels": pixels, "budgets": list(budgets), "folder": str(FLOWCUT)}))
    return out


@functools.cache
def llava_437() -> SimpleNamespace:
    """Under 4.37.2: ``towers`` ((kind, dtype) -> :class:`PinnedTower`) of :data:`DTYPES`; ``llm``: (model,
    inputs_embeds, the official result) per :data:`LLM_CASES`; ``text`` (dtype -> the official text embeds
    of :func:`clip_cases`); ``flowcut`` ((tower, pixels, embeddings, budgets, the official results) per
    :data:`FLOWCUT_TOWERS`; empty without ``../shared``)."""
    towers = {(kind, dt): PinnedTower(kind, dt) for kind, dts in DTYPES.items() for dt in dts}
    llm = llm_models()
    llm_cases = [{"config": {f: getattr(m.config, f) for f in LLAMA_FIELDS}, "state": state, "x": x}
                 for m, state, x in llm]
    text = [clip_case(dt, vision=False) for dt in (torch.float32, torch.bfloat16)]
    flowcut = flowcut_cases(FLOWCUT_TOWERS, FLOWCUT_BUDGETS) if FLOWCUT.is_dir() else []
    with tempfile.TemporaryDirectory(prefix="llava-437-") as tmp:
        jobs = [("clip_vision_official.py", [t.case() for t in towers.values()]),
                ("llama_layers_official.py", llm_cases), ("clip_towers_official.py", text),
                ("flowcut_official.py", [c[-1] for c in flowcut])]
        got, got_llm, got_text, got_flowcut = _launch("llava-4.37", jobs, Path(tmp))
    _attach(list(towers.values()), got)
    return SimpleNamespace(versions=got["versions"], towers=towers,
                           llm=[(m, x, r) for (m, _, x), r in zip(llm, got_llm["cases"], strict=True)],
                           text=dict(zip((torch.float32, torch.bfloat16), got_text["cases"], strict=True)),
                           flowcut=[(*c[:3], c[-1]["budgets"], r)
                                    for c, r in zip(flowcut, got_flowcut["cases"], strict=True)])


@functools.cache
def flowcut_437_sweep() -> list[tuple]:
    """FlowCut under 4.37.2 at every budget: the 5x5 towers and ViT-L/14-336's depth and grid (24 blocks,
    576 patches, width 64), as ``flowcut`` of :func:`llava_437`; a launch of its own (slow tests)."""
    cases = [*flowcut_cases(FLOWCUT_TOWERS, range(1, 26)), *flowcut_cases(((24, 336, 64),), range(1, 577))]
    with tempfile.TemporaryDirectory(prefix="flowcut-437-") as tmp:
        (got,) = _launch("llava-4.37", [("flowcut_official.py", [c[-1] for c in cases])], Path(tmp),
                         timeout=3600)   # 576 forwards of a 24-block tower
    return [(*c[:3], c[-1]["budgets"], r) for c, r in zip(cases, got["cases"], strict=True)]


@functools.cache
def glamm_428() -> SimpleNamespace:
    """Under 4.28.1 (the ``glamm`` pin, LiteLVLM's nearest release): ``clip`` (dtype -> what LiteLVLM's
    ``CLIPVisionTower`` reads from both towers of :func:`clip_cases`' model)."""
    dtypes = (torch.float32, torch.bfloat16)
    with tempfile.TemporaryDirectory(prefix="glamm-428-") as tmp:
        jobs = [("clip_towers_official.py", [clip_case(dt, vision=True) for dt in dtypes])]
        (got,) = _launch("glamm", jobs, Path(tmp))
    return SimpleNamespace(versions=got["versions"], clip=dict(zip(dtypes, got["cases"], strict=True)))
