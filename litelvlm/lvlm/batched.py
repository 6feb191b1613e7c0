"""``GroundingPipeline.ground_many`` (and ``ground``, its one-prompt case): one implementation for one
prompt or many (several prompts sharing a forward is this project's addition).

Details: docs/efficiency.md (``litelvlm.lvlm.batched``).
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

import torch

from ..budget import Budget
from ..errors import LiteLVLMError
from ..llm.captured import runner_of
from ..llm.context import run_layers
from ..llm.limits import check_attention_memory, check_positions
from ..machine.memory import eager_attention_bytes
from ..method import Method, position_error
from .generate import generated_output
from .prune import stage_inputs
from .sequence import GroundingOutput, GroundingRun


def batch_error(pipe, method: str, answer: str = "teacher-forced") -> str | None:
    """Why ``method`` on ``pipe`` cannot share one LLM forward across prompts (None: it can)."""
    spec = pipe.spec(method)
    if spec.prunes_inside_llm:
        return f"{method} prunes inside the LLM with a layer-by-layer forward of its own"
    if spec.oracle:
        return f"{method} is an analysis oracle that reads the unpruned LLM per prompt"
    if answer != "teacher-forced":
        return f"--answer {answer} decodes each prompt's answer token by token"
    return None


def _pad_positions(pos: torch.Tensor, length: int) -> torch.Tensor:
    """``pos`` ((1, S) or (3, 1, S)) continued to ``length`` along the sequence (padding rows; masked out)."""
    extra = length - int(pos.shape[-1])
    if extra == 0:
        return pos
    tail = pos[..., -1:] + torch.arange(1, extra + 1, device=pos.device, dtype=pos.dtype)
    return torch.cat([pos, tail], dim=-1)


@functools.cache
def cache_bytes() -> int:
    """This CPU's last-level cache in bytes (Linux's sysfs, read once; 32 MiB where it cannot be read)."""
    sizes = []
    for f in Path("/sys/devices/system/cpu/cpu0/cache").glob("index*/size"):
        text = f.read_text().strip().upper()
        try:
            sizes.append(int(text.rstrip("KMG")) * {"K": 2**10, "M": 2**20, "G": 2**30}.get(text[-1:], 1))
        except (ValueError, OSError):
            continue
    return max(sizes, default=32 * 2**20)


def _auto_budget(lm) -> int | None:
    """``sub_batches``' ``"auto"`` budget: the last-level cache (:func:`cache_bytes`) on a CPU with the eager
    kernel when one decoder layer's weights fit in it too (each sub-batch reads them again: a large model's
    weights from main memory, so there one forward stays cheaper), else None."""
    params = list(lm.layers[0].parameters()) if getattr(lm, "layers", None) else []
    if not params or params[0].device.type != "cpu":
        return None
    cache = cache_bytes()
    return cache if sum(t.numel() * t.element_size() for t in params) <= cache else None


def sub_batches(lm, lengths: list[int], budget: int | str | None = "auto") -> list[slice]:
    """Consecutive slices of a batch of sequences of ``lengths``, each run as one padded forward of ``lm``: as
    many sequences as keep its eager attention's peak (:func:`~litelvlm.machine.memory.eager_attention_bytes`
    at the slice's longest length) within ``budget`` bytes, at least one. ``"auto"``: :func:`_auto_budget`;
    None, or an attention other than eager (no S x S scores): one slice."""
    config = lm.config
    eager = getattr(config, "_attn_implementation", None) == "eager"
    if budget == "auto":
        budget = _auto_budget(lm) if eager else None
    if budget is None or not eager:
        return [slice(0, len(lengths))]
    out, start, longest = [], 0, 0
    for i, length in enumerate(lengths):
        longest = max(longest, length) if i > start else length
        need = eager_attention_bytes(i - start + 1, config.num_attention_heads, longest, longest, lm.dtype)
        if i > start and need > int(budget):
            out.append(slice(start, i))
            start, longest = i, length
    return [*out, slice(start, len(lengths))]


def padded_forward(lm, name: str, embeds: list[torch.Tensor], positions: list[torch.Tensor],
                   num_visual: list[int | None], device) -> torch.Tensor:
    """(B, S_max, h) final normed hidden states of the LLM ``lm`` (model ``name``) over the sequences
    ``embeds`` ((S_i, h) each, at ``positions``, (1, S_i) or (3, 1, S_i)) right-padded to the longest, in one
    forward whose attention mask hides the padding (under a captured prefill, its segments with that mask);
    each sequence checked against the LLM's positions and the batch against its attention memory."""
    lengths = [int(e.shape[0]) for e in embeds]
    s = max(lengths)
    for length, pos, n in zip(lengths, positions, num_visual, strict=True):
        check_positions(lm, name, length, pos.to(device), n)
    check_attention_memory(lm, s, len(embeds), model=name)
    batch = torch.zeros(len(embeds), s, embeds[0].shape[-1], dtype=embeds[0].dtype, device=device)
    mask = torch.zeros(len(embeds), s, dtype=torch.long, device=device)
    for i, (e, length) in enumerate(zip(embeds, lengths, strict=True)):
        batch[i, :length] = e.to(device)
        mask[i, :length] = 1
    pos = torch.cat([_pad_positions(p.to(device), s) for p in positions], dim=-2)
    if runner_of(lm) is not None:  # ``--prefill captured``: the padded batch through the captured segments
        return lm.norm(run_layers(lm, batch, pos, attention_mask=mask))
    return lm(inputs_embeds=batch, position_ids=pos, attention_mask=mask, use_cache=False).last_hidden_state



def position_rule(pipe, prepared, method: str, spec: Method, positions: str) -> tuple[str, str]:
    """A run's (positions, rule): ``ground(positions=...)`` resolved against the family's and the method's
    rules, with their refusals."""
    if why := position_error(method, spec, positions):
        raise LiteLVLMError(why)
    if positions == "official" and pipe.abilities.position_rule is not None:
        positions = pipe.official_rule(method)
    rule = spec.positions if positions == "official" else positions
    if prepared.answer == "generate" and spec.forward is not None:
        raise LiteLVLMError(f"{method} prunes inside the LLM; answer='generate' runs the methods that "
                            "prune at the LLM input (a pruned KV cache while decoding has no official "
                            "definition)")
    return positions, rule


def plan(pipe, prepared, method: str, budget: Budget | int | None, positions: str,
         full: torch.Tensor | None = None) -> GroundingRun:
    """One input's run before any step: K counted once against the family's :meth:`full_budget`, the input
    the family runs (its ``run_input``), the position rule; ``full`` (given ``visual_embeds``) checked."""
    spec = pipe.spec(method)
    whole = pipe.full_budget(prepared)
    k = Budget.of(budget).count(whole, spec.extra_tokens)
    prepared = pipe.run_input(prepared, method, prunes=not spec.baseline and int(k) != whole)
    positions, rule = position_rule(pipe, prepared, method, spec, positions)
    if full is not None and tuple(full.shape) != (n := pipe.num_visual(prepared), pipe.hidden_size):
        raise LiteLVLMError(f"visual_embeds must have shape ({n}, {pipe.hidden_size}); "
                            f"got {tuple(full.shape)}")
    return GroundingRun(prepared, method, spec, k, positions, rule, full)


def shares_forward(pipe, runs: list[GroundingRun]) -> bool:
    """Whether ``runs`` go through the LLM together: more than one, none with given visual tokens, and
    their method and answers allow it (:func:`batch_error`)."""
    if len(runs) < 2 or any(run.full is not None for run in runs):
        return False
    answers = sorted({run.prepared.answer for run in runs} - {"teacher-forced"})
    return batch_error(pipe, runs[0].method, answers[0] if answers else "teacher-forced") is None


def _stage(pipe, run: GroundingRun, seg_states, options: dict) -> None:
    """The method's stage step of ``run`` and its LLM sequence; where the stage ran the LLM itself, the states
    the mask head reads, read at once (before another forward)."""
    run.visual, run.selection, run.kept, llm_output = stage_inputs(
        pipe, run.prepared, run.method, run.spec, run.budget, run.full, run.positions, run.rule, **options)
    if llm_output is not None:
        final, rows = llm_output
        run.rows, run.seq_len = rows.to(final.device), int(final.shape[1])
        run.seg_hidden = seg_states(final, run.rows)[0]
        return
    run.layout = pipe.layout(run.prepared, int(run.visual.shape[0]))
    run.position_ids = (run.layout.position_ids if run.kept is None
                        else pipe.kept_positions(run.prepared, run.kept))
    run.embeds = pipe.sequence_embeds(run.prepared, run.visual)


def _forward(pipe, runs: list[GroundingRun], seg_states) -> None:
    """The LLM over ``runs``' sequences (one: the family's standard forward; several: one right-padded,
    masked forward) and each run's states at the rows predicting its [SEG]s."""
    if len(runs) == 1:
        run = runs[0]
        final = pipe.final_hidden(run.embeds, run.position_ids, run.layout.num_visual)
    else:
        with pipe.forward_context():
            final = padded_forward(pipe.language_model, pipe.name, [run.embeds[0] for run in runs],
                                   [run.position_ids for run in runs],
                                   [run.layout.num_visual for run in runs], pipe.device)
    for i, run in enumerate(runs):
        run.rows, run.seq_len = run.layout.seg_predictors.to(final.device), int(run.embeds.shape[1])
        run.seg_hidden = seg_states(final, run.rows)[i]


def _mask_heads(pipe, runs: list[GroundingRun]) -> list[GroundingOutput]:
    """Each run's output from its [SEG] states: the prompts per run, the decoder per run (several runs with
    prompts: ``decode_masks_many``, in one call where the family overrides it), the upscaling per run."""
    prompts = [pipe.seg_prompts(run.seg_hidden) for run in runs]
    if len(runs) > 1 and sum(int(p.shape[0]) for p in prompts) > 0:
        lows = pipe.decode_masks_many([run.prepared for run in runs], prompts)
    else:
        lows = [pipe.decode_masks(run.prepared, p) for run, p in zip(runs, prompts, strict=True)]
    return [run.output(p, low, pipe.upscale_masks(run.prepared, low))
            for run, p, low in zip(runs, prompts, lows, strict=True)]


def _ground_group(pipe, runs: list[GroundingRun], sub_batch_bytes: int | str | None,
                  options: dict) -> list[GroundingOutput]:
    """The outputs of a group of runs: each run's stage, then the LLM over the group's sequences (in
    :func:`sub_batches`), then the mask heads; a generated answer (a group of one) decoded after its stage."""
    with pipe.seg_source() as seg_states:
        for run in runs:
            _stage(pipe, run, seg_states, options)
        if runs[0].generates and runs[0].seg_hidden is None:
            return [generated_output(pipe, runs[0])]
        waiting = [run for run in runs if run.seg_hidden is None]
        lengths = [int(run.embeds.shape[1]) for run in waiting]
        for part in sub_batches(pipe.language_model, lengths, sub_batch_bytes) if waiting else ():
            _forward(pipe, waiting[part], seg_states)
    return _mask_heads(pipe, runs)


def ground_many(pipe, prepared: list, method: str, budget: Budget | int | None,
                visual_embeds: list[torch.Tensor | None] | None, positions: str,
                sub_batch_bytes: int | str | None = "auto", **options: Any) -> list[GroundingOutput]:
    """:meth:`GroundingPipeline.ground_many` after its checks: every input planned (:func:`plan`), then
    grounded in one group when they can share the LLM's forward (:func:`shares_forward`), else one by one
    (under ``answer="generate"``, inside the family's ``generated`` hook)."""
    given = [None] * len(prepared) if visual_embeds is None else list(visual_embeds)
    runs = [plan(pipe, p, method, budget, positions, full) for p, full in zip(prepared, given, strict=True)]
    if shares_forward(pipe, runs):
        return _ground_group(pipe, runs, sub_batch_bytes, options)
    return [_ground_alone(pipe, run, options) for run in runs]


def _ground_alone(pipe, run: GroundingRun, options: dict) -> GroundingOutput:
    """One run as a group of one; under ``answer="generate"`` inside the family's ``generated`` hook."""

    def go() -> GroundingOutput:
        return _ground_group(pipe, [run], None, options)[0]

    return pipe.generated(run.prepared, go) if run.generates else go()


__all__ = ["GroundingRun", "batch_error", "cache_bytes", "ground_many", "padded_forward", "plan",
           "position_rule", "shares_forward", "sub_batches"]
