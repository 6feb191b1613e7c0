"""What every family's measurable parts share: the prepared input and the LLM prefill of a token schedule.

A family's parts (its ``cost.py``) run the statements its pipeline runs for each part, on the pipeline's own
modules, so what is counted and timed is what ``eval-grounding`` runs. :class:`PrefillParts` holds the
prefill: ``ground``'s LLM forward for a token schedule (``sequence_embeds`` + ``final_hidden``; with pruning
inside the LLM, the method's selection on an ``LLMContext`` and its forward), plus the LM head on every
position (the logits the family's generation computes in its prefill).
"""

from __future__ import annotations

from typing import Any

import torch

from ..errors import LiteLVLMError
from ..llm.context import LLMContext, run_layers
from ..llm.pruned_forward import pruned_forward, run_pruned_from
from ..lvlm.family import GroundingPipeline
from ..methods.select import select
from ..pruning.selection import Selection
from . import CostArch
from .tokens import TokenPlan, selects_on_llm_input


class PrefillParts:
    """What every family's parts share: the prepared input (``prepared``, ``visual``: the (N, h) visual
    tokens) and the LLM prefill of a token schedule (:meth:`run_prefill`). A family's parts set ``pipe``,
    ``arch``, ``method_args`` (the run's arguments, which each method reads its options from), ``prepared``
    and ``visual``, and give the LM head (:meth:`lm_head`), its fixed parts and the parts of a method's
    call."""

    pipe: GroundingPipeline
    arch: CostArch
    method_args: Any
    prepared: object
    visual: torch.Tensor
    #: the time column of the part that runs the vision tower a method running it itself runs again
    #: (GLaMM's ``clip_ms``, Qwen2.5-VL's ``vision_ms``)
    tower_part: str = "vision_ms"

    def lm_head(self, final: torch.Tensor) -> torch.Tensor:
        """The family's LM head on the final hidden states (the logits its generation computes in the
        prefill)."""
        raise NotImplementedError

    def options(self, method: str) -> dict:
        """``ground``'s options for ``method`` (``Method.options_from`` the run's arguments, as
        ``eval-grounding``)."""
        return self.arch.spec(method).options_from(self.method_args)

    def fixed_parts(self) -> dict:
        """{time column: part} of the parts every method runs the same (timed once per attention kernel)."""
        raise NotImplementedError

    def part_times(self, method: str, fixed: dict[str, float], selector_ms: float) -> dict[str, float]:
        """{time column: ms} of the parts of ``method``'s grounding call beside its prefill, in the table's
        order."""
        raise NotImplementedError

    def run_tower(self, method: str, budget: int):
        """A method's own run of the vision tower at ``budget`` with its options (``Method.tower_run``, a
        method with ``uses_vision_tower``), as ``ground`` runs it."""
        spec = self.pipe.spec(method)
        return spec.tower_run(self.pipe.tower_context(self.prepared), budget, **self.options(method))

    def run_select(self, method: str, budget: int):
        """A CLIP-side method's selection on the prepared input's selector inputs (``ground``'s first step for
        it), or a tower-stage method's (its run of the vision tower's blocks, :meth:`run_tower`)."""
        if self.pipe.spec(method).prunes_in_vision_tower:
            return self.run_tower(method, budget)
        return select(method, self.prepared.selector_inputs(), budget)

    def run_forwards(self):
        """The image's forwards as :meth:`run_e2e`'s chain makes them (``prepare_image``): their vision stage
        is the preparation's run of the tower, which a method running the tower itself is timed less."""
        raise NotImplementedError

    def run_prefill(self, plan: TokenPlan) -> torch.Tensor:
        """Next-token logits (1, S', V) of the LLM forward with the token schedule ``plan``: one stage is
        the LLM on that many visual tokens (``none``, CLIP-side methods, those selecting on the LLM's inputs,
        a method pruning nothing inside the LLM at its budget); more stages run the plan's LLM-side method
        inside the LLM (FastV and DART at their layer, SparseVLM's stages)."""
        pipe, prepared = self.pipe, self.prepared
        if plan.text_tokens != self.arch.text_tokens:
            raise LiteLVLMError(f"the plan has {plan.text_tokens} text tokens, the prompt "
                                f"{self.arch.text_tokens}")
        # one stage: the LLM on K tokens, whatever chose them (a selection on the LLM's inputs is a part of
        # its own, :meth:`run_llm_input_select`: counted as ``selector_tflops``, timed as ``selector_ms``)
        if len(plan.stages) == 1:
            return self.lm_head(pipe.run_llm(prepared, self.visual[: plan.stages[0][1]])[0])
        spec = self.arch.spec(plan.method) if plan.method else None  # None: the plan needs no LLM-side method
        # its selection cannot run on meta
        if pipe.device.type == "meta" and spec is not None and spec.host_sync:
            return self.lm_head(self._staged_stand_in(plan))
        if spec is not None and spec.forward is not None:  # the method's own forward inside the LLM
            ctx = LLMContext(pipe, prepared, self.visual)
            # a method pruning once from one layer (FastV's forward: FastV, DART) selects at the plan's layer
            layer = {"layer": plan.stages[1][0]} if spec.forward is pruned_forward else {}
            sel = spec.select(ctx, plan.budget, **layer)
            # one pruning layer: the pruned forward alone (the method's forward also checks the [SEG] rows,
            # with torch.equal, which the meta device of the FLOPs count cannot run)
            final = (run_pruned_from(ctx, sel.indices, layer["layer"]) if layer
                     else spec.forward(ctx, sel))[0]
        else:
            raise LiteLVLMError(f"no prefill for the token stages {plan.stages} of method {plan.method!r}")
        return self.lm_head(final)

    def run_llm_input_select(self, method: str, budget: int) -> Selection:
        """The selection of a method choosing on the LLM's input embeddings (DivPrune, CDPruner: ``ground``'s
        step before the LLM), on the (N, h) visual tokens, with its options."""
        spec = self.arch.spec(method)
        if not selects_on_llm_input(spec):
            raise LiteLVLMError(f"{method} does not select on the LLM's input embeddings")
        return spec.select(LLMContext(self.pipe, self.prepared, self.visual), budget, **self.options(method))

    def _staged_stand_in(self, plan: TokenPlan) -> torch.Tensor:
        """Final hidden states of an LLM forward with ``plan``'s token counts, keeping the FIRST visual tokens
        at each stage: a selection that reads tensor values (``Method.host_sync``: DivPrune's greedy order,
        DART's pivots, SparseVLM's clustering) cannot run on the meta device, and which tokens are kept does
        not change the FLOPs."""
        ctx = LLMContext(self.pipe, self.prepared, self.visual)
        s, n = ctx.image_start, ctx.num_visual
        keep = torch.cat(
            [torch.arange(s), s + torch.arange(plan.stages[0][1]), torch.arange(s + n, ctx.seq_len)])
        # 1-D RoPE: the kept rows' indices; M-RoPE (3, 1, S): the kept rows' original ids
        hidden, pos = ctx.embeds[:,
                                 keep], keep[
            None] if self.pipe.abilities.position_axes == 1 else ctx.layout.positions(keep)
        ends = [first for first, _ in plan.stages[1:]] + [ctx.num_layers]
        prev = plan.stages[0][1]
        for (first, visual), end in zip(plan.stages, ends):
            if first:  # prune to ``visual`` tokens before this stage (recycled tokens count as visual)
                idx = torch.cat(
                    [torch.arange(s), s + torch.arange(visual), torch.arange(s + prev, hidden.shape[1])])
                hidden, pos = hidden[:, idx], pos[..., idx.to(pos.device)]
            hidden = run_layers(ctx.lm, hidden, pos.to(hidden.device), first, end)
            prev = visual
        return ctx.lm.norm(hidden)
