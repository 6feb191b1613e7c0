"""Batched grounding: several prompts (and their images) through the LLM in ONE forward (this project's
addition).

:func:`ground_batch` is :meth:`~litelvlm.lvlm.family.GroundingPipeline.ground` for a list of prepared inputs
and one method and budget: each input is pruned by its own selection (the method's stage, run per input: K, N
and the sequence length may differ per input), the pruned sequences are right-padded to the longest and run
through the LLM in one forward with an attention mask that hides the padding, and each input's ``[SEG]`` rows
feed its own mask head (a video's expressions alike, each one sequence of its frames' tokens and its text, its
masks from SAM 2 per prompt as ``ground`` makes them; SAM's decoder over every input's prompts in one call
where the family has ``decode_masks_many``: GLaMM, the decoder keeping each (image, prompt) row apart). Right
padding under a causal mask leaves every real row's attention unchanged, so the masks equal ``ground``'s up to
floating-point rounding (identical in float32 on the tiny models; bfloat16 differs by rounding only, which
``eval-grounding --batch-size`` and ``eval-video --batch-size`` report). :func:`batch_error` names the runs
that cannot batch (a method with its own forward inside the LLM, an analysis oracle, a generated answer, a
captured prefill); those run one by one.
:func:`padded_forward` is the padded forward alone (VideoGLaMM's own video path batches its expressions with
it).

On a CPU with the eager attention (the official stack's kernel, which writes every B x heads x S x S score),
the padded forward runs in consecutive sub-batches whose scores fit the last-level cache (:func:`sub_batches`;
where one decoder layer's weights fit in it too, as on the tiny models): past the cache each score pass goes
to main memory and a batch of long sequences becomes slower per prompt than one prompt at a time. A sub-batch
of one is exactly ``ground``'s forward; short (pruned) sequences still share one forward.
"""

from __future__ import annotations

import functools
from pathlib import Path

import torch

from ..budget import Budget
from ..errors import LiteLVLMError
from ..llm.captured import runner_of
from ..llm.limits import check_attention_memory, check_positions
from ..llm.positions_pad import stage_inputs
from ..memory import eager_attention_bytes
from .sequence import GroundingOutput


def batch_error(pipe, method: str, answer: str = "teacher-forced") -> str | None:
    """Why ``method`` on ``pipe`` cannot share one LLM forward across prompts (None: it can)."""
    spec = pipe.spec(method)
    if spec.prunes_inside_llm:
        return f"{method} prunes inside the LLM with a layer-by-layer forward of its own"
    if spec.oracle:
        return f"{method} is an analysis oracle that reads the unpruned LLM per prompt"
    if answer != "teacher-forced":
        return f"--answer {answer} decodes each prompt's answer token by token"
    if runner_of(pipe.language_model) is not None:
        return "the captured prefill runs one sequence at a time"
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
    many sequences as keep its eager attention's peak (:func:`~litelvlm.memory.eager_attention_bytes` at the
    slice's longest length) within ``budget`` bytes, at least one. ``"auto"``: :func:`_auto_budget`; None, or
    an attention other than eager (no S x S scores): one slice."""
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


def _select(pipe, prepared, method: str, budget, positions: str, options: dict) -> dict:
    """One input's selection, as ``ground`` makes it: its LLM inputs, positions and layout (or the method's
    own LLM output, when its selection ran the LLM)."""
    spec = pipe.spec(method)
    whole = pipe.full_budget(prepared)
    k = Budget.of(budget).count(whole, spec.extra_tokens)
    prepared = pipe.run_input(prepared, method, prunes=not spec.baseline and int(k) != whole)
    positions, rule = pipe._position_rule(prepared, method, spec, positions)
    # the stage's step under the rule (``pad``: its markers added), as ``ground`` runs it
    vis, sel, kept, llm_output = stage_inputs(pipe, prepared, method, spec, k, None, positions, rule,
                                              **options)
    item = {"prepared": prepared, "budget": k, "sel": sel, "rule": rule, "llm_output": llm_output}
    if llm_output is None:
        layout = pipe.layout(prepared, int(vis.shape[0]))
        item.update(embeds=pipe.sequence_embeds(prepared, vis)[0],
                    pos=layout.position_ids if kept is None else pipe.kept_positions(prepared, kept),
                    num_visual=layout.num_visual, pred=layout.seg_predictors)
    return item


def padded_forward(lm, name: str, embeds: list[torch.Tensor], positions: list[torch.Tensor],
                   num_visual: list[int | None], device) -> torch.Tensor:
    """(B, S_max, h) final normed hidden states of the LLM ``lm`` (model ``name``) over the sequences
    ``embeds`` ((S_i, h) each, at ``positions``, (1, S_i) or (3, 1, S_i)) right-padded to the longest, in one
    forward whose attention mask hides the padding; each sequence checked against the LLM's positions and the
    batch against its attention memory."""
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
    return lm(inputs_embeds=batch, position_ids=pos, attention_mask=mask, use_cache=False).last_hidden_state


def _forward(pipe, items: list[dict]) -> torch.Tensor:
    """(B, S_max, h) final normed hidden states of the padded batch of ``items``' sequences, in one
    forward."""
    return padded_forward(pipe.language_model, pipe.name, [it["embeds"] for it in items],
                          [it["pos"] for it in items], [it["num_visual"] for it in items], pipe.device)


def _mask_heads(pipe, items: list[dict], method: str) -> list[GroundingOutput]:
    """``ground``'s outputs for every input from its ``[SEG]`` rows' states: the prompts per input, SAM's
    decoder over all inputs in one call where the family has one (``decode_masks_many``; else per input), the
    upscaling per input."""
    prompts = [pipe.seg_prompts(it["out"][0]) for it in items]
    many = getattr(pipe, "decode_masks_many", None)
    if many is not None and len(items) > 1 and sum(int(p.shape[0]) for p in prompts) > 0:
        lows = many([it["prepared"] for it in items], prompts)
    else:
        lows = [pipe.decode_masks(it["prepared"], p) for it, p in zip(items, prompts, strict=True)]
    return [_output(pipe, it, p, low, method) for it, p, low in zip(items, prompts, lows, strict=True)]


def _output(pipe, item: dict, prompts: torch.Tensor, low: torch.Tensor, method: str) -> GroundingOutput:
    """One input's :class:`GroundingOutput` from its prompts and the decoder's low-resolution logits."""
    (seg_hidden, pred, seq_len), sel = item["out"], item["sel"]
    logits = pipe.upscale_masks(item["prepared"], low)
    return GroundingOutput(masks=logits > 0, mask_logits=logits, low_res_logits=low, seg_hidden=seg_hidden,
                           prompt_embeddings=prompts, kept_indices=sel.indices, seg_positions=pred,
                           method=method,
                           budget=item["budget"], prune_layer=int(sel.prune_layer), seq_len=seq_len,
                           selection=sel, position_rule=item["rule"])


@torch.no_grad()
def ground_batch(pipe, prepared: list, method: str = "none", budget: Budget | int | None = None,
                 positions: str = "official", sub_batch_bytes: int | str | None = "auto",
                 **options) -> list[GroundingOutput]:
    """``pipe.ground(p, method, budget, positions=..., **options)`` for every ``p`` in ``prepared``, the LLM
    run over all of them in right-padded, masked forwards (one per :func:`sub_batches` slice;
    ``sub_batch_bytes``: its budget); refused (:func:`batch_error`) where that cannot be done."""
    if not prepared:
        return []
    if why := pipe.method_error(method):
        raise LiteLVLMError(why)
    answers = sorted({getattr(p, "answer", "teacher-forced") for p in prepared} - {"teacher-forced"})
    if why := batch_error(pipe, method, answers[0] if answers else "teacher-forced"):
        raise LiteLVLMError(f"cannot batch: {why}")
    with pipe.seg_source() as seg_states:
        items = [_select(pipe, p, method, budget, positions, options) for p in prepared]
        if any(it["llm_output"] is not None for it in items):
            raise LiteLVLMError(f"cannot batch: {method}'s selection runs the LLM on each prompt")
        lengths = [int(it["embeds"].shape[0]) for it in items]
        for part in sub_batches(pipe.language_model, lengths, sub_batch_bytes):
            final = _forward(pipe, items[part])
            for i, it in enumerate(items[part]):
                pred = it["pred"].to(final.device)
                it["out"] = (seg_states(final, pred)[i], pred, int(it["embeds"].shape[0]))
    return _mask_heads(pipe, items, method)


__all__ = ["batch_error", "cache_bytes", "ground_batch", "padded_forward", "sub_batches"]
