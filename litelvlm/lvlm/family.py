"""The contract of a model family: what a pixel-grounding LVLM gives the pruning methods and the studies.

A family is one package (``litelvlm/glamm``, ``unipixel``, ``videoglamm``) whose pipeline subclasses :class:`GroundingPipeline`
and is named in :mod:`litelvlm.families`; the methods and the studies ask only what this class declares. It is written
from three shapes: GLaMM (a fixed 24x24 grid of CLIP patches, 1-D RoPE positions (1, S), SAM), Qwen2.5-VL/UniPixel
(2x2-merged tokens of a native-resolution ViT whose number depends on the image, 3-D M-RoPE positions (3, 1, S), SAM 2)
and VideoGLaMM (a video of T frames, N = 3328, 1-D RoPE; masks (S, T, H, W): ``mask_shape``; per-frame budgets:
``budget_unit``). Hence N is asked per prepared input (:meth:`GroundingPipeline.num_visual`); where the visual tokens
sit, the rows predicting each [SEG] and the positions come as one :class:`SequenceLayout`, indexed on their last axis
only; the LLM is a decoder stack run layer by layer (:mod:`litelvlm.llm.context`), every sequence checked first
(:mod:`litelvlm.llm.limits`); CLIP-side methods read ``prepared.selector_inputs()`` and the family maps their selection
onto its own tokens (:meth:`GroundingPipeline.clip_selection_tokens`; a family without a CLIP tower pairs an external
one), while LLM-side methods index the family's tokens directly, and tower-stage ones run its tower (``tower_context``).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import torch

from ..budget import Budget
from ..errors import LiteLVLMError
from ..llm.captured import runner_of
from ..llm.context import LLMContext, run_layers
from ..llm.limits import check_llm_input
from ..method import Method
from ..methods import get_method, mapped_methods
from ..pruning import Selection
from .prune import clip_stage, llm_stage
from .sequence import GroundingOutput, SequenceLayout, norm_input_states

#: ``ground(positions=...)``: each method's ``official`` rule for its kept tokens' RoPE positions
#: (``Method.positions``), or every method's kept tokens ``keep`` their original positions, or are ``renumber``-ed
POSITION_SWITCH = ("official", "keep", "renumber")

#: what a family's mask head reads at the rows predicting each [SEG] (``GroundingPipeline.seg_reads``): the LLM's
#: final normed hidden states (GLaMM's ``output_hidden_states[-1]``), or the input of the LLM's final norm
#: (UniPixel's ``cache_state_hook`` on ``language_model.norm``)
SEG_READS = ("final", "norm_input")
#: what a family's ``ground`` budget counts (``GroundingPipeline.budget_unit``)
BUDGET_UNITS = ("visual", "frame")


class GroundingPipeline:
    """A family's pipeline: one image, its sentences, any method and budget -> masks.

    A family implements the methods that raise ``NotImplementedError`` here (and sets ``name``,
    ``numerics``, ``quantization``, ``layer_hooks``); :meth:`ground`, :meth:`final_hidden`,
    :meth:`context` and :meth:`attention_rows` are the same for every family.
    """

    #: the family's name in :mod:`litelvlm.families`
    family: str = ""
    name: str = ""
    numerics: Any = None
    #: how the LLM's weights were quantized (``QuantReport``), None when they were not
    quantization: Any = None
    #: hooks that run layers in float32 (``layer_dtype="float32"``), empty otherwise
    layer_hooks: list | tuple = ()
    #: what the mask head reads (:data:`SEG_READS`)
    seg_reads: str = "final"
    #: the id of the family's [SEG] token (set by each family when it loads its tokenizer)
    seg_token_id: int = -1
    #: the family's own rule for kept tokens' positions, which ``positions="official"`` means on it (None: each
    #: method's ``Method.positions``, written for LLaVA's 1-D RoPE)
    family_positions: str | None = None
    #: the family hands CLIP-side selections to its LLM (:meth:`clip_selection_tokens`); False: no CLIP is paired
    offers_clip_side: bool = True
    #: the family runs methods between its vision tower's blocks (``Method.prunes_in_vision_tower``, :meth:`tower_context`)
    offers_tower_stage: bool = False
    #: the family's visual tokens are not CLIP's patches: ``prepared.selector_inputs()`` is a
    #: :class:`~litelvlm.pruning.MappedInputs` (an external CLIP's scores mapped onto the family's tokens), so only the
    #: CLIP-side methods that read per-token scores alone (``Method.scores_only``) run, selecting the family's tokens
    clip_mapped: bool = False
    #: axes of the LLM's positions: 1 (1-D RoPE, ``position_ids`` (1, S)) or 3 (M-RoPE, (3, 1, S))
    position_axes: int = 1
    #: sentences one prompt holds under the family's own protocol (None: the study's ``--protocol`` decides,
    #: GLaMM's several turns or one; 1: one expression per prompt, UniPixel's)
    sentences_per_prompt: int | None = None
    #: the LVLM the family is built on, as :data:`litelvlm.methods.VARIANTS` keys a method's variant for it ("": the
    #: backbone the methods' table rows describe, LLaVA-1.5's CLIP and Llama)
    backbone: str = ""
    #: the answers the family's prompts offer (``with_sentences(answer=...)``): ``teacher-forced`` (the answer holding
    #: [SEG] is part of the prompt) and, where the official protocol generates, ``generate`` (greedy,
    #: :mod:`litelvlm.lvlm.generate`)
    answers: tuple[str, ...] = ("teacher-forced",)

    #: ``answer="generate"``: the most new tokens a generated answer may have (the family's official limit)
    max_new_tokens: int = 0
    #: ``ground``'s budget (:data:`BUDGET_UNITS`): ``visual``, K of the N visual tokens the LLM receives; ``frame``, K
    #: of each frame's CLIP patches (a video family, with its own rule for the LLM-side methods' K)
    budget_unit: str = "visual"

    # -- what a family provides ------------------------------------------------------------------------
    @property
    def device(self) -> torch.device:
        raise NotImplementedError

    @property
    def dtype(self) -> torch.dtype:
        raise NotImplementedError

    @property
    def language_model(self):
        """The LLM's decoder stack (``layers``, ``norm``, ``rotary_emb``, ``config``, ``embed_tokens``)."""
        raise NotImplementedError

    @property
    def hidden_size(self) -> int:
        """Width of the LLM's hidden states (and of the visual tokens it receives)."""
        raise NotImplementedError

    def describe(self) -> dict:
        """JSON-able description (result configs)."""
        raise NotImplementedError

    def prepare_image(self, image, seed: int = 0):
        """The per-image work (vision forwards, the mask decoder's image embedding), reused by every
        method and budget; ``with_sentences`` adds the prompt."""
        raise NotImplementedError

    def with_sentences(self, prepared, sentences: list[str], turns=None, **options):
        """``prepared`` with the prompt for ``sentences`` (one [SEG] each) and the CLIP text trace."""
        raise NotImplementedError

    @property
    def num_visual_tokens(self) -> int | None:
        """N for every input when the family's grid is fixed (GLaMM: 576), None when N depends on the image
        (then the studies ask :meth:`num_visual` per prepared input)."""
        return None

    @property
    def lm_head(self):
        """The LLM's output projection (a family whose :attr:`answers` offer ``generate``)."""
        raise LiteLVLMError(f"the {self.family} family's prompts offer no generated answer")

    @property
    def stop_ids(self) -> set[int]:
        """The token ids that end a generated answer (a family whose :attr:`answers` offer ``generate``)."""
        raise LiteLVLMError(f"the {self.family} family's prompts offer no generated answer")

    def visual_grid(self, prepared) -> tuple[int, int]:
        """(rows, cols) of ``prepared``'s N visual tokens in the sequence's order (row-major), read from the layout's
        positions (M-RoPE) or the square of N (1-D RoPE); :func:`litelvlm.lvlm.visual_view.visual_grid`."""
        from .visual_view import visual_grid

        return visual_grid(self, prepared)

    def visual_window(self, image) -> np.ndarray:
        """The part of ``image`` the visual tokens cover, an RGB array (CLIP's crop window for a family of CLIP
        patches, else the whole image); :func:`litelvlm.lvlm.visual_view.visual_window`."""
        from .visual_view import visual_window

        return visual_window(self, image)

    def num_visual(self, prepared) -> int:
        """N: the visual tokens the LLM receives for this input, unpruned."""
        raise NotImplementedError

    def full_budget(self, prepared) -> int:
        """The budget keeping everything (the baseline's) in :attr:`budget_unit`: N, or a frame's CLIP patches."""
        return self.num_visual(prepared)

    def mask_shape(self, prepared) -> tuple[int, ...]:
        """One [SEG]'s mask: (H, W) of an image; (T, H, W) of a video's T frames."""
        return tuple(int(v) for v in prepared.image_size)

    def keeps_everything(self, prepared, out: GroundingOutput) -> bool:
        """Whether ``out``'s run gave the LLM every visual token unchanged and in order (nothing pruned)."""
        return bool(torch.equal(out.kept_indices.cpu(), torch.arange(self.num_visual(prepared))))

    def visual_tokens(self, prepared) -> torch.Tensor:
        """(N, h) the visual tokens in the LLM's input space, in the family's sequence order."""
        raise NotImplementedError

    def clip_selection_tokens(self, prepared, sel: Selection, full: torch.Tensor | None = None) -> torch.Tensor:
        """(K, h) the LLM inputs of a CLIP-side selection: ``sel.indices`` index CLIP's patch grid (raster
        order), ``sel.features`` are merged CLIP features; ``full`` are the family's (N, h) visual tokens to
        gather from (None: computed here). A family whose visual tokens are not CLIP's patches maps the grid
        onto its tokens here; the LLM-side methods index the family's own tokens and need no map."""
        raise NotImplementedError

    def tower_context(self, prepared):
        """The family's vision tower on ``prepared`` (a :class:`~litelvlm.tower.TowerContext`, which maps its
        output onto the LLM inputs), where :attr:`offers_tower_stage`."""
        raise LiteLVLMError(f"the {self.family} family offers no vision-tower stage")

    def clip_selection_rows(self, prepared, sel: Selection) -> torch.Tensor:
        """(K,) the family's visual-token index that each LLM input of a CLIP-side selection stands for, in
        :meth:`clip_selection_tokens`'s order; negative where an input is no single patch (a [CLS], a merged
        extra token). ``ground(positions="keep")`` gives the inputs those tokens' original positions."""
        raise NotImplementedError

    def layout(self, prepared, num_visual: int) -> SequenceLayout:
        """The sequence of ``prepared``'s prompt with ``num_visual`` visual tokens."""
        raise NotImplementedError

    def sequence_embeds(self, prepared, visual: torch.Tensor) -> torch.Tensor:
        """(B, S, h) input embeddings: the prompt's text embeddings, ``visual`` ((K, h) or (B, K, h)) at the image's."""
        raise NotImplementedError

    def seg_prompts(self, seg_hidden: torch.Tensor) -> torch.Tensor:
        """The mask decoder's prompts from the final hidden states predicting each [SEG]."""
        raise NotImplementedError

    def decode_masks(self, prepared, prompts: torch.Tensor) -> torch.Tensor:
        """(S, 1, h, w) low-resolution mask logits for the prompts ((S, T, h, w) for a video's T frames)."""
        raise NotImplementedError

    def upscale_masks(self, prepared, low: torch.Tensor) -> torch.Tensor:
        """(S, *mask_shape) float32 mask logits at the original size, (S, H, W) or a video's (S, T, H, W)."""
        raise NotImplementedError

    # -- the family's own RefCOCO metric (none by default) ----------------------------------------------
    #: the name of the family's official referring-segmentation metric, which ``eval-grounding`` scores beside
    #: GLaMM's (:meth:`sample_metrics`, :meth:`summarize_metrics`; "": GLaMM's alone)
    own_metric: str = ""

    def sample_metrics(self, pred, gt, box) -> dict:
        """The family's own per-sample columns (prefixed with :attr:`own_metric`) for a boolean (H, W) prediction
        ``pred``, the target ``gt`` and the referent's COCO box (x, y, w, h) or None; {} when it has none."""
        return {}

    @classmethod
    def summarize_metrics(cls, rows) -> dict:
        """The family's own summary columns over one (method, budget)'s rows of :meth:`sample_metrics`."""
        return {}

    # -- the same for every family -----------------------------------------------------------------
    def spec(self, method: str) -> Method:
        """The :class:`~litelvlm.method.Method` ``method`` runs as on this family: its variant for the family's
        :attr:`backbone` where one is registered, else the method itself."""
        return get_method(method, self.backbone)

    def method_error(self, method: str) -> str | None:
        """Why ``method`` cannot run on this family (None: it can): read from the method's declaration, so a study
        refuses it before anything is written (it reads class attributes only, so a study may ask the class)."""
        spec = get_method(method, self.backbone)
        if spec.uses_clip and not self.offers_clip_side:
            return (f"{method} reads CLIP's patch grid; the {self.family} family pairs no CLIP with its visual "
                    "tokens yet (an external CLIP mapped onto its grid): use a method that acts with the LLM")
        if spec.uses_clip and self.clip_mapped and not spec.scores_only:
            return (f"{method} reads CLIP's features or attention on CLIP's own patch grid; the {self.family} family "
                    "maps only an external CLIP's per-token scores onto its own tokens (this project's adaptation), "
                    "so the CLIP-side methods that read scores alone run on it: "
                    f"{', '.join(mapped_methods())}, or a method that acts with the LLM")
        if spec.prunes_in_vision_tower and not self.offers_tower_stage:
            return f"{method} prunes inside a vision tower; the {self.family} family offers no vision-tower stage"
        if spec.one_axis_positions and self.position_axes != 1:
            return (f"{method}'s official position rule is for 1-D RoPE; the {self.family} family's positions have "
                    f"{self.position_axes} axes (multi-axis positions need a rule of the method's own first)")
        return None

    def official_rule(self, method: str) -> str:
        """What ``positions="official"`` does with ``method``'s kept tokens on this family: the family's own rule
        (``family_positions``) where it has one and the method keeps single tokens, else the method's own."""
        spec = self.spec(method)
        if self.family_positions is not None and (self.family_positions != "keep" or spec.original_positions):
            return self.family_positions
        return spec.positions

    @torch.no_grad()
    def prepare(self, image, sentences: list[str], turns=None, seed: int = 0):
        """``prepare_image`` then ``with_sentences``: everything one image and its sentences need."""
        return self.with_sentences(self.prepare_image(image, seed=seed), sentences, turns)

    @contextlib.contextmanager
    def seg_source(self) -> Iterator[Callable[[torch.Tensor, torch.Tensor], torch.Tensor]]:
        """Within: the LLM forwards leave what the mask head reads (:attr:`seg_reads`); yields
        ``states(final, rows)``: (B, R, h) those states at sequence ``rows``, ``final`` being the last forward's
        final normed hidden states (B, S, h). The hook on the final norm (``norm_input``) is removed on exit."""
        if self.seg_reads not in SEG_READS:
            raise LiteLVLMError(f"seg_reads must be one of {', '.join(SEG_READS)}; got {self.seg_reads!r}")
        with norm_input_states(self.language_model.norm if self.seg_reads == "norm_input" else None) as states:
            yield states

    def final_hidden(self, embeds: torch.Tensor, position_ids: torch.Tensor,
                     num_visual: int | None = None) -> torch.Tensor:
        """Final (normed) hidden states of the LLM's standard forward over ``embeds`` (B, S, h), an explicit all-ones
        mask and ``position_ids`` (one sequence's: expanded to the batch), after :mod:`litelvlm.llm.limits`' checks."""
        b, s = embeds.shape[:2]
        pos = position_ids.to(embeds.device)
        grad = torch.is_grad_enabled() and embeds.requires_grad
        check_llm_input(self.language_model, self.name, s, pos, num_visual, b, grad)
        if b == 1 and not grad and runner_of(self.language_model) is not None:  # ``--prefill captured``
            return self.language_model.norm(run_layers(self.language_model, embeds, pos))
        pos = pos.expand(*pos.shape[:-2], b, pos.shape[-1]) if b > 1 else pos
        out = self.language_model(inputs_embeds=embeds, position_ids=pos,
                                  attention_mask=torch.ones(b, s, dtype=torch.long, device=embeds.device),
                                  use_cache=False)
        return out.last_hidden_state

    def run_llm(self, prepared, visual: torch.Tensor,
                kept: torch.Tensor | None = None) -> tuple[torch.Tensor, SequenceLayout]:
        """(final normed hidden states (1, S, h), the sequence's layout) of the LLM's standard forward with the
        visual tokens ``visual`` (K, h) at the image's place; ``kept`` (K,): the visual-token indices they are,
        to give them their original positions (None: the positions of a sequence with K visual tokens)."""
        layout = self.layout(prepared, int(visual.shape[0]))
        pos = layout.position_ids if kept is None else self.kept_positions(prepared, kept)
        return self.final_hidden(self.sequence_embeds(prepared, visual), pos, layout.num_visual), layout

    def kept_positions(self, prepared, kept: torch.Tensor) -> torch.Tensor:
        """Positions of the sequence whose visual tokens are ``kept`` (indices into the N, in sequence order):
        every token's position in the unpruned sequence (``positions="keep"``)."""
        kept = kept.long().cpu()
        if bool((kept < 0).any()):
            raise LiteLVLMError("positions='keep': the selection holds tokens that are no single visual token (a "
                                "[CLS] or merged extra token), which have no original position")
        full = self.layout(prepared, self.num_visual(prepared))
        s, n = full.image_start, full.num_visual
        return full.positions(torch.cat([torch.arange(s), s + kept, torch.arange(s + n, full.seq_len)]))

    def ground(self, prepared, method: str = "none", budget: Budget | int | None = None,
               visual_embeds: torch.Tensor | None = None, positions: str = "official", **options) -> GroundingOutput:
        """Masks for every [SEG] with ``method`` keeping ``budget`` visual tokens (a :class:`~litelvlm.budget.Budget`;
        an int K or None, all N, are converted here), counted once against this input's N.

        ``visual_embeds`` (N, h) replaces the family's visual tokens (e.g. a leaf tensor for captum);
        the call is differentiable in it (wrap in ``torch.no_grad()`` for evaluation). ``positions``
        (:data:`POSITION_SWITCH`): the kept tokens' RoPE positions as the method's official code sets them,
        or their original ones (``keep``), or those of the shorter sequence (``renumber``). The method's own
        stage object runs the selection (:meth:`run_clip_stage` / :meth:`run_llm_stage`).
        """
        if positions not in POSITION_SWITCH:
            raise LiteLVLMError(f"positions must be one of {', '.join(POSITION_SWITCH)}; got {positions!r}")
        if why := self.method_error(method):
            raise LiteLVLMError(why)
        n = self.num_visual(prepared)
        spec = self.spec(method)
        budget = Budget.of(budget).count(n, spec.extra_tokens)
        positions, rule = self._position_rule(prepared, method, spec, positions)
        generate = getattr(prepared, "answer", "teacher-forced") == "generate"
        full = visual_embeds
        if full is not None and tuple(full.shape) != (n, self.hidden_size):
            raise LiteLVLMError(f"visual_embeds must have shape ({n}, {self.hidden_size}); got {tuple(full.shape)}")
        with self.seg_source() as seg_states:
            vis, sel, kept, llm_output = spec.stage.run(self, prepared, method, budget, full, spec=spec, rule=rule,
                                                        positions=positions, given=visual_embeds is not None,
                                                        **options)
            if llm_output is None and generate:
                from .generate import generated_output

                return generated_output(self, prepared, vis, kept, method, budget, sel, rule)
            if llm_output is None:
                final, layout = self.run_llm(prepared, vis, kept)
                pred = layout.seg_predictors
            else:
                final, pred = llm_output
            seg_hidden = seg_states(final, pred.to(final.device))[0]
        out = self._masks(prepared, final, seg_hidden, pred.to(final.device), method, budget, sel, int(sel.prune_layer))
        out.position_rule = rule
        return out

    def run_clip_stage(self, prepared, method: str, budget: int, full, **kw) -> tuple:
        """A CLIP-side method's step of :meth:`ground` (:class:`~litelvlm.method.ClipStage`): :func:`clip_stage`."""
        return clip_stage(self, prepared, method, budget, full, **kw)

    def run_llm_stage(self, prepared, method: str, budget: int, full, **kw) -> tuple:
        """The step of :meth:`ground` of a method acting with the LLM (the other stages): :func:`llm_stage`."""
        return llm_stage(self, prepared, method, budget, full, **kw)

    def _position_rule(self, prepared, method: str, spec: Method, positions: str) -> tuple[str, str]:
        """``ground``'s (positions, rule): the switch resolved against the family's and the method's official rules
        (a method passing merged tokens keeps its own), and the runs it refuses."""
        if positions == "official" and self.family_positions is not None:
            positions = self.official_rule(method)
        rule = spec.positions if positions == "official" else positions
        if positions == "keep" and not spec.original_positions:
            raise LiteLVLMError(f"positions='keep': {method} passes tokens that are no single visual token ([CLS], "
                                "merged or recycled tokens), which have no original position")
        if getattr(prepared, "answer", "teacher-forced") == "generate" and spec.forward is not None:
            raise LiteLVLMError(f"{method} prunes inside the LLM; answer='generate' runs the methods that prune at the "
                                "LLM input (a pruned KV cache while decoding has no official definition)")
        return positions, rule

    def _masks(self, prepared, final, seg_hidden, pred, method, budget, sel, prune_layer) -> GroundingOutput:
        prompts = self.seg_prompts(seg_hidden)
        low = self.decode_masks(prepared, prompts)
        logits = self.upscale_masks(prepared, low)
        return GroundingOutput(masks=logits > 0, mask_logits=logits, low_res_logits=low, seg_hidden=seg_hidden,
                               prompt_embeddings=prompts, kept_indices=sel.indices, seg_positions=pred,
                               method=method, budget=budget, prune_layer=prune_layer, seq_len=int(final.shape[1]),
                               selection=sel)

    def context(self, prepared, visual_embeds: torch.Tensor | None = None) -> LLMContext:
        """An ``LLMContext`` over the unpruned sequence (hidden states per layer, attention rows)."""
        full = self.visual_tokens(prepared) if visual_embeds is None else visual_embeds
        return LLMContext(self, prepared, full)

    def attention_rows(self, prepared, layers: list[int], queries: str | torch.Tensor = "last",
                       visual_embeds: torch.Tensor | None = None) -> dict[int, torch.Tensor]:
        """{layer: (H, Q, S) attention of the query rows} in the unpruned LLM; only those rows are computed. ``queries``:
        ``"last"``, ``"text"`` (text tokens after the image), ``"seg"`` (tokens predicting [SEG]) or explicit sequence
        positions. Visual tokens occupy ``ctx.visual_slice()``."""
        ctx = self.context(prepared, visual_embeds)
        return {int(layer): ctx.attention_rows(int(layer), queries) for layer in layers}
