"""The contract of a model family: what a pixel-grounding LVLM gives the pruning methods and the studies.

A family is one package (``litelvlm/<family>``) whose pipeline subclasses :class:`GroundingPipeline` and is
registered by its card in :mod:`litelvlm.registry.families`. The contract has three parts:

* what every family provides (``abc.abstractmethod``): its input (``prepare_image``, ``with_sentences``), its
  LLM sequence (``language_model``, ``visual_tokens``, ``layout``, ``sequence_embeds``) and its mask head
  (``seg_prompts``, ``decode_masks``, ``upscale_masks``);
* what it declares as data (``family``, ``abilities``: :class:`~litelvlm.lvlm.abilities.Abilities`) and what
  it may override: defaults (``device``, ``num_visual``, ``mask_shape``, ...) and the hooks ``ground_many``
  calls, each with its default (``run_input``, ``run_clip_stage``, ``run_llm_stage``, ``generated``,
  ``decode_masks_many``);
* what no family overrides (``typing.final``): ``ground_many`` and ``ground``, its one-prompt case, one for
  every family (their steps: :mod:`litelvlm.lvlm.batched`), and what they run (``method_error``,
  ``final_hidden``, the LLM layer by layer: :mod:`litelvlm.llm.context`).

:class:`~litelvlm.lvlm.contract.FamilyContract`, the base, holds the first part, the declared data and the
defaults; :class:`GroundingPipeline` adds the hooks ``ground_many`` calls and the third part. N is asked per
prepared input (:meth:`GroundingPipeline.num_visual`); where the visual tokens sit, the rows predicting each
[SEG] and the positions come as one :class:`SequenceLayout`, indexed on their last axis only."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from typing import final

import torch

from ..budget import Budget
from ..errors import LiteLVLMError
from ..llm.context import LLMContext
from ..method import Method
from ..methods import get_method
from ..switches import POSITION_SWITCH, check_one_of
from . import batched, encoders
from . import contract_steps as steps
from .contract import FamilyContract
from .numerics import set_attention, tower_implementation
from .prepared import Prepared
from .prune import clip_stage, llm_stage
from .sequence import GroundingOutput, SequenceLayout, norm_input_states


class GroundingPipeline(FamilyContract):
    """A family's pipeline: one image (or video), its sentences, any method and budget -> masks. What a family
    implements, declares and its defaults are :class:`~litelvlm.lvlm.contract.FamilyContract`; here, the hooks
    ``ground_many`` calls (a family may override each) and what is the same for every family (final)."""

    # -- the hooks ``ground_many`` calls ---------------------------------------------------------------------
    def run_input(self, prepared: Prepared, method: str, prunes: bool):
        """The input ``ground`` runs ``method`` on (default: ``prepared``); ``prunes``: the run keeps fewer
        than all the visual tokens. A family whose prompt differs when pruned (Sa2VA's video) returns that
        prompt here, and refuses a method this input cannot run."""
        return prepared

    def run_clip_stage(self, prepared: Prepared, method: str, budget: int, full, **kw) -> tuple:
        """A CLIP-side method's step of :meth:`ground` (:data:`~litelvlm.method_stage.CLIP_STAGE`):
        :func:`clip_stage`."""
        return clip_stage(self, prepared, method, budget, full, **kw)

    def run_llm_stage(self, prepared: Prepared, method: str, budget: int, full, **kw) -> tuple:
        """The step of :meth:`ground` of a method acting with the LLM (the other stages):
        :func:`llm_stage`."""
        return llm_stage(self, prepared, method, budget, full, **kw)

    def generated(self, prepared: Prepared, run: Callable[[], GroundingOutput]) -> GroundingOutput:
        """``answer="generate"``: ``run()``'s output (:mod:`~litelvlm.lvlm.generate`) as the family's official
        code reads it."""
        return run()

    def decode_masks_many(self, prepared: list[Prepared], prompts: list[torch.Tensor]) -> list[torch.Tensor]:
        """:meth:`decode_masks` of several inputs (their ``prompts`` each), for the inputs that shared an LLM
        forward in ``ground_many``; default: one call per input. A family whose decoder can take them in one
        call (GLaMM) overrides it, each input's logits equal to its own call's up to rounding."""
        return [self.decode_masks(p, q) for p, q in zip(prepared, prompts, strict=True)]

    # -- the same for every family (final) -------------------------------------------------------------------
    @final
    def spec(self, method: str) -> Method:
        """The :class:`~litelvlm.method.Method` ``method`` runs as here: its variant for
        ``abilities.backbone``, or itself."""
        return get_method(method, self.abilities.backbone)

    @final
    def method_error(self, method: str) -> str | None:
        """Why ``method`` cannot run on this family (None: it can): read from the method's declaration and the
        family's abilities, so a study refuses it before anything is written (it reads class attributes only,
        so a study may ask the class)."""
        return steps.method_error(self, method)

    @final
    def official_rule(self, method: str) -> str:
        """What ``positions="official"`` does with ``method``'s kept tokens on this family: the family's own
        rule (the abilities' ``position_rule``) where it has one and the method keeps single tokens, else the
        method's."""
        spec, own = self.spec(method), self.abilities.position_rule
        if own is not None and (own != "keep" or spec.original_positions):
            return own
        return spec.positions

    @final
    @torch.no_grad()
    def prepare(self, image, sentences: list[str], turns=None, seed: int = 0):
        """``prepare_image`` then ``with_sentences``."""
        return self.with_sentences(self.prepare_image(image, seed=seed), sentences, turns)

    @final
    @contextlib.contextmanager
    def seg_source(self) -> Iterator[Callable[[torch.Tensor, torch.Tensor], torch.Tensor]]:
        """Within: the LLM forwards leave what the mask head reads (the abilities' ``seg_reads``); yields
        ``states(final, rows)``: (B, R, h) those states at sequence ``rows``, ``final`` being the last
        forward's final normed hidden states (B, S, h). The hook on the final norm (``norm_input``) is removed
        on exit."""
        reads = self.abilities.seg_reads
        with norm_input_states(self.language_model.norm if reads == "norm_input" else None) as states:
            yield states

    @final
    def final_hidden(self, embeds: torch.Tensor, position_ids: torch.Tensor,
                     num_visual: int | None = None) -> torch.Tensor:
        """Final (normed) hidden states of the LLM's standard forward over ``embeds`` (B, S, h), an explicit
        all-ones mask and ``position_ids`` (one sequence's: expanded to the batch), after
        :mod:`litelvlm.llm.limits`' checks."""
        return steps.final_hidden(self, embeds, position_ids, num_visual)

    @final
    def run_llm(self, prepared: Prepared, visual: torch.Tensor,
                kept: torch.Tensor | None = None) -> tuple[torch.Tensor, SequenceLayout]:
        """(final normed hidden states (1, S, h), the sequence's layout) of the LLM's standard forward with
        the visual tokens ``visual`` (K, h) at the image's place; ``kept`` (K,): the visual-token indices they
        are, to give them their original positions (None: the positions of a sequence with K visual
        tokens)."""
        layout = self.layout(prepared, int(visual.shape[0]))
        pos = layout.position_ids if kept is None else self.kept_positions(prepared, kept)
        return self.final_hidden(self.sequence_embeds(prepared, visual), pos, layout.num_visual), layout

    @final
    def kept_positions(self, prepared: Prepared, kept: torch.Tensor) -> torch.Tensor:
        """Positions of the sequence whose visual tokens are ``kept`` (indices into the N, in sequence order):
        every token's position in the unpruned sequence (``positions="keep"``)."""
        return steps.kept_positions(self, prepared, kept)

    @final
    def ground(self, prepared: Prepared, method: str = "none", budget: Budget | int | None = None,
               visual_embeds: torch.Tensor | None = None, positions: str = "official",
               **options) -> GroundingOutput:
        """Masks for every [SEG] with ``method`` keeping ``budget``: :meth:`ground_many` of this one prompt.

        ``visual_embeds`` (N, h) replaces the family's visual tokens (e.g. a leaf tensor for captum);
        the call is differentiable in it (wrap in ``torch.no_grad()`` for evaluation)."""
        given = None if visual_embeds is None else [visual_embeds]
        return self.ground_many([prepared], method, budget, given, positions, **options)[0]

    @final
    def ground_many(self, prepared: list[Prepared], method: str = "none", budget: Budget | int | None = None,
                    visual_embeds: list[torch.Tensor | None] | None = None, positions: str = "official",
                    sub_batch_bytes: int | str | None = "auto", **options) -> list[GroundingOutput]:
        """Masks for every [SEG] of each input of ``prepared`` with ``method`` keeping ``budget`` (a
        :class:`~litelvlm.budget.Budget`; an int K or None, all, are converted here), counted once per input
        against :meth:`full_budget` (N, or a video's per-frame patches).

        ``visual_embeds``: per input, (N, h) tokens in place of the family's (or None). ``positions``
        (:data:`~litelvlm.switches.POSITION_SWITCH`): the kept tokens' RoPE positions as the method's official
        code sets them, or their original ones (``keep``), or those of the shorter sequence (``renumber``), or
        PosPad's (``pad``: original ones, one marker per dropped run). Per input the family's hooks run in
        order: :meth:`run_input`, the method's stage (:meth:`run_clip_stage` / :meth:`run_llm_stage`), the
        mask head (:meth:`decode_masks_many` for inputs that shared a forward) and, under
        ``answer="generate"``, :meth:`generated`. Inputs that can share the LLM's forward run in one
        right-padded forward (its eager attention in sub-batches within ``sub_batch_bytes``; this project's
        addition), the others one by one: :mod:`litelvlm.lvlm.batched`."""
        check_one_of("positions", positions, POSITION_SWITCH)
        if why := self.method_error(method):
            raise LiteLVLMError(why)
        return batched.ground_many(self, list(prepared), method, budget, visual_embeds, positions,
                                   sub_batch_bytes, **options)

    @final
    def context(self, prepared: Prepared, visual_embeds: torch.Tensor | None = None) -> LLMContext:
        """An ``LLMContext`` over the unpruned sequence (hidden states per layer, attention rows)."""
        full = self.visual_tokens(prepared) if visual_embeds is None else visual_embeds
        return LLMContext(self, prepared, full)

    @final
    def attention_rows(self, prepared: Prepared, layers: list[int], queries: str | torch.Tensor = "last",
                       visual_embeds: torch.Tensor | None = None) -> dict[int, torch.Tensor]:
        """{layer: (H, Q, S) attention of the query rows} in the unpruned LLM (only those rows computed);
        ``queries``: ``"last"``, ``"text"`` (after the image), ``"seg"`` (predicting [SEG]) or sequence
        positions."""
        ctx = self.context(prepared, visual_embeds)
        return {int(layer): ctx.attention_rows(int(layer), queries) for layer in layers}

    @final
    def clip_loaded(self, clip) -> None:
        """What follows a paired CLIP's loading on first use: the tower kernel of ``numerics.attn`` in it
        (under eager, CLIP's of ``numerics.clip_softmax``), and its capture where ``--encoders`` captures the
        encoders (:func:`litelvlm.lvlm.encoders.adopt`)."""
        set_attention(tower_implementation(self.numerics.attn), clip.modules(),
                      clip_softmax=self.numerics.clip_softmax)
        encoders.adopt(self)
