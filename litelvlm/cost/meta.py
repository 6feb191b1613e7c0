"""Running the pipeline on the ``meta`` device for counting, and the selectors on true shapes.

On ``meta`` nothing is computed, so the few places where transformers reads a value back
(``bool(mask.all())``: "is the all-ones attention mask all ones?", to skip building a causal mask)
cannot run; :class:`MetaScalars` answers them. Selection is data dependent (top-k, merging), so
:class:`SelectorBench` runs the CLIP-side selectors on real tensors of the arch's true shapes: random
hidden states for every CLIP layer and real random weights in only the modules selectors read (the
last two vision blocks, the post-layernorm and the projection) of a ``meta`` CLIP, behind the same
``HFClip`` backend the pipeline uses.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from types import SimpleNamespace

import torch
from torch.utils.flop_counter import FlopCounterMode
from tqdm.auto import tqdm

from ..clip.traces import TextTrace, VisionTrace
from ..lvlm.prepared import Prepared
from ..machine.memory import LiveTensorBytes
from ..methods import get_method
from ..methods.select import select
from ..pruning import Selection, SelectorInputs
from ..pruning.tower import ClipTower
from .clip import SENTENCE, InMemoryHFClip, build_clip_sizes
from .meta_memo import MetaKernelMemo
from .tokens import TokenPlan, count_flops, selects_on_clip, selects_on_llm_input


@dataclass
class StandInInput(Prepared):
    """The prepared input of a count's made-up prompt: its ids and token types, and the CLIP traces a
    selection reads (``inputs``: :meth:`SelectorBench.inputs`)."""

    mm_token_type_ids: torch.Tensor | None = None
    inputs: Callable[[], SelectorInputs] | None = None

    def selector_inputs(self, *args) -> SelectorInputs:
        """The CLIP traces of the count (:meth:`SelectorBench.inputs`)."""
        return self.inputs()


#: Bytes in a MiB (the tables' memory unit).
MB = 2 ** 20

#: Length of the CLIP text the selectors see in :class:`SelectorBench` (what the pipeline's question is).
QUERY_TOKENS = 16


class MetaScalars(MetaKernelMemo):
    """Within the block, a boolean read back from a ``meta`` tensor is ``True`` (the checks transformers
    makes on the all-ones attention masks the pipeline builds); any other read-back is an error. Every other
    op goes through :class:`~litelvlm.cost.meta_memo.MetaKernelMemo` (a repeat answered without its kernel),
    so enter it before the counting modes."""

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        if func is torch.ops.aten._local_scalar_dense.default and args[0].device.type == "meta":
            if args[0].dtype != torch.bool:
                raise RuntimeError(f"a {args[0].dtype} value was read back from a meta tensor")
            return True
        return super().__torch_dispatch__(func, types, args, kwargs)


def materialize_selector_modules(model: torch.nn.Module, device: str | torch.device = "cpu",
                                 seed: int = 0, all_layers: bool = False) -> torch.nn.Module:
    """Give real random tensors to the modules selectors use (last two vision blocks, post-layernorm,
    visual projection; every vision block with ``all_layers``, for ToMe, which re-runs them) of a
    ``meta`` CLIPModel; everything else stays on ``meta``."""
    g = torch.Generator().manual_seed(seed)
    vm = model.vision_model
    blocks = list(vm.encoder.layers) if all_layers else list(vm.encoder.layers[-2:])
    for mod in [*blocks, vm.post_layernorm, model.visual_projection]:
        if all(p.device.type != "meta" for p in mod.parameters()):
            continue  # already real
        mod.to_empty(device=device)
        for name, p in mod.named_parameters():
            if name.endswith("bias"):
                p.data.zero_()
            elif p.dim() == 1:
                p.data.fill_(1.0)
            else:
                p.data.copy_(torch.randn(p.shape, generator=g) * 0.02)
    return model


class SelectorBench:
    """Runs CLIP-side selectors on a synthetic trace with the arch's true CLIP shapes (real tensors); ``arch``
    has ``name``, ``llm`` (its ``llm_hidden``) and ``clip`` (the CLIP sizes)."""

    def __init__(self, arch, device: str | torch.device = "cpu", seed: int = 0):
        self.llm_hidden, self.device, self.seed = arch.llm.llm_hidden, device, seed
        model = materialize_selector_modules(build_clip_sizes(arch.clip, "meta"), device, seed)
        self.backend = InMemoryHFClip(model, f"{arch.name}-clip")
        cfg = model.config.vision_config
        g = torch.Generator().manual_seed(seed)
        n = self.backend.num_patches + 1
        hs = tuple(torch.randn(1, n, cfg.hidden_size, generator=g).to(device, torch.float32)
                   for _ in range(cfg.num_hidden_layers + 1))
        self.trace = VisionTrace(hidden_states=hs, grid=self.backend.grid, num_prefix_tokens=1,
                                 backend=self.backend)
        g = torch.Generator().manual_seed(seed + 1)
        emb = torch.randn(1, arch.clip.embed_dim, generator=g).to(device)
        self.text = TextTrace(texts=[SENTENCE], input_ids=torch.zeros(1, QUERY_TOKENS, dtype=torch.long),
                              eos_index=torch.tensor([QUERY_TOKENS - 1]), text_embeds=emb, hidden_states=None,
                              truncated=[False], backend=self.backend)

    def inputs(self) -> SelectorInputs:
        """The selectors' inputs: the synthetic vision trace and the one-text trace."""
        return SelectorInputs(self.trace, self.text)

    def tower(self) -> ClipTower:
        """The CLIP tower from the trace's embeddings (:class:`~litelvlm.pruning.tower.ClipTower`), its map
        onto the LLM's inputs keeping the kept patches' features as they are: the projector is the row's own
        part (``projector_tflops``)."""
        return ClipTower.of(self.backend, self.trace, to_llm=lambda sel: (sel.features, sel.indices))

    def select(self, method: str, budget: int, **options) -> Selection:
        """The selection of a CLIP-side method (what ``GlammPipeline.ground`` computes first); a tower-stage
        method's runs the tower's blocks from the trace's embeddings (:meth:`tower`)."""
        spec = get_method(method)
        if spec.prunes_in_vision_tower:
            return spec.tower_run(self.tower(), budget, **options)
        return select(method, self.inputs(), budget)

    def full_tower_flops(self) -> int:
        """FLOPs of one full run of the tower (``TowerContext.full_run``): what a method running the tower
        itself (``Method.uses_vision_tower``) is charged its own run in place of, as ``eval-grounding``'s
        stage costs charge it (this project's accounting)."""
        materialize_selector_modules(self.backend.modules(), self.device, self.seed, all_layers=True)
        return count_flops(lambda: self.tower().full_run())[0]

    def run(self, method: str, budget: int, **options) -> tuple[int, Selection | None]:
        """(FLOPs of the selection, the selection); (0, None) for ``none`` and FastV, whose cost is in the
        LLM; ``options``: the method's (``Method.options_from``). An LLM-side method composed with a tower
        rule (IPCV + FastV) is charged its tower run (``Method.tower_tokens``), its selection None."""
        spec = get_method(method)
        # ToMe re-runs the vision blocks, HiPrune reads a middle block's attention
        if spec.reads_vision_blocks:
            materialize_selector_modules(self.backend.modules(), self.device, self.seed, all_layers=True)
        if spec.tower_tokens is not None:
            return count_flops(lambda: spec.tower_run(self.tower(), budget, **options))[0], None
        if selects_on_llm_input(spec):  # from the (N, h) LLM input embeddings (DivPrune, CDPruner)
            # the CLIP traces (CDPruner's relevance)
            prepared = StandInInput(sentences=[], input_ids=torch.empty(0, dtype=torch.long),
                                    inputs=self.inputs)
            return llm_input_selection_flops(method, budget, self.backend.num_patches, self.llm_hidden,
                                             prepared), None
        if not selects_on_clip(spec):  # none, FastV, DART, SparseVLM: their cost is in the prefill
            return 0, None
        out: dict[str, Selection] = {}
        flops = count_flops(lambda: out.setdefault("selection", self.select(method, budget, **options)))[0]
        return flops, out["selection"]


def llm_input_selection_flops(method: str, budget: int, num_visual: int, hidden: int, prepared=None,
                              arch=None) -> int:
    """FLOPs of an ``llm-input`` method's selection (DivPrune, CDPruner) on real random (``num_visual``,
    ``hidden``) LLM input embeddings, the true shapes (its selection reads tensor values, which ``meta`` has
    not); ``prepared``: what the selection may read beside them (the CLIP traces, for CDPruner). With ``arch``
    (a family with backbone variants, a Qwen2.5-VL one), the method's variant runs on a synthetic prompt of
    ``arch``'s lengths (:func:`synthetic_prompt`: what CDPruner's Qwen2.5-VL variant reads)."""
    g = torch.Generator().manual_seed(0)
    embeds = torch.randn(num_visual, hidden, generator=g)
    spec = get_method(method) if arch is None else arch.spec(method)
    pipeline = None
    if arch is not None:
        pipeline, prepared = synthetic_prompt(arch, num_visual, hidden)
    inputs = SimpleNamespace(visual_embeds=embeds, num_visual=num_visual, prepared=prepared,
                             pipeline=pipeline)
    return count_flops(lambda: spec.select(inputs, budget))[0]


def synthetic_prompt(arch, num_visual: int, hidden: int) -> tuple[SimpleNamespace, SimpleNamespace]:
    """(pipeline, prepared) of a Qwen2.5-VL family's prompt for a selection's FLOPs: ``arch.text_tokens`` text
    tokens (``arch.prefix_tokens`` of them before the image) around ``num_visual`` pads, and an embedding
    table of random rows (a lookup counts no FLOPs; the table's size does not matter)."""
    text = max(int(arch.text_tokens), 1)
    before = min(int(arch.prefix_tokens), text)
    types = torch.tensor([0] * before + [2] * num_visual + [0] * (text - before))
    weight = torch.randn(8, hidden, generator=torch.Generator().manual_seed(1))
    # a stand-in of the family's pipeline: the embedding table alone (no family's grid: downsample pools the
    # squarest one)
    pipeline = SimpleNamespace(language_model=SimpleNamespace(embed_tokens=SimpleNamespace(weight=weight)),
                               numerics=None, visual_grid=None)
    ids = torch.arange(len(types)) % 8
    return pipeline, StandInInput(sentences=[], input_ids=ids, mm_token_type_ids=types)


def llm_prefills(parts, plans: dict, attns: list[str], set_attention) -> dict:
    """{(attention, plan): (FLOPs, peak bytes, kept bytes)} of every distinct token plan's prefill on
    ``meta``, per attention implementation (``set_attention(attn)`` switches the pipeline's); ``parts`` runs a
    plan's prefill (``run_prefill(plan)``)."""
    llm: dict = {}
    scalars = MetaScalars()  # one memo for every prefill: the plans and kernels share most of their ops
    for attn in attns:
        set_attention(attn)  # same weights (none: meta), other attention kernel
        for plan in tqdm(list(dict.fromkeys(plans.values())), desc=f"LLM on meta ({attn})", leave=False):
            llm[attn, plan] = meta_prefill(parts, plan, scalars)
    return llm


def meta_prefill(parts, plan: TokenPlan, scalars: MetaScalars | None = None) -> tuple[int, int, int]:
    """(FLOPs, peak bytes, bytes the logits keep) of one prefill of the pipeline on ``meta``; ``scalars``: the
    :class:`MetaScalars` to run it in (its memo kept from earlier prefills; None: a new one)."""
    fc, mem = FlopCounterMode(display=False), LiveTensorBytes()
    with torch.no_grad(), scalars or MetaScalars(), fc, mem:
        out = parts.run_prefill(plan)
    kept = mem.live
    del out
    return int(fc.get_total_flops()), mem.peak, kept
