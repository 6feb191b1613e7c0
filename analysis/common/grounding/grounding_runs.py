"""What every study of the GLaMM pipeline shares: which (method, budget) runs to make, each method's options
from the study's arguments, the sample image of a one-image study, and the official protocol's sentences and
turns for one image."""

from __future__ import annotations

import logging

from litelvlm.budget import Budget, range_error
from litelvlm.data.refer import load_refer
from litelvlm.errors import LiteLVLMError
from litelvlm.methods import get_method
from litelvlm.registry.families import card, exif_transpose

log = logging.getLogger(__name__)

#: one run of a study: (method name, its budget)
Run = tuple[str, Budget]
#: a study's error where every planned budget is above every image's visual tokens (:func:`image_runs`)
NOTHING_FITS = "no planned budget fits any image's visual tokens; nothing written"


def plan(methods: list[str], budgets: list[Budget], num_patches: int | None) -> list[Run]:
    """(method, budget) runs: every method at every budget, the baseline (``none``) once at K = N
    (``Budget.ALL`` when N depends on the image: ``num_patches`` None). Against a fixed N this is the budgets'
    one range check (:meth:`Budget.checked`: the runs hold the checked budgets, which ``ground`` counts
    without checking again); an unknown method or no method is an error (no budget: the options' declaration
    refuses it, :func:`litelvlm.shared_options.budgets_option`)."""
    if not methods:
        raise LiteLVLMError("--methods is empty")
    if num_patches is not None:
        budgets = check_budgets(budgets, num_patches)
    # K = N: nothing to check
    full = Budget.ALL if num_patches is None else Budget(num_patches, within=num_patches)
    out: list[Run] = []
    for m in methods:  # an unknown name is an error naming the known ones; the baseline runs once, at K = N
        out.extend([(m, full)] if get_method(m).baseline else [(m, b) for b in budgets])
    return list(dict.fromkeys(out))


def check_budgets(budgets: list[Budget], num_patches: int) -> list[Budget]:
    """``budgets`` checked once against a fixed N = ``num_patches`` (:meth:`Budget.checked`; those checked
    already are not checked again): the checked budgets, or a LiteLVLMError naming ``--budgets`` and the first
    that does not fit (a study's check before any work)."""
    checked = {b: b.checked(num_patches) for b in budgets}
    if bad := next((b for b, c in checked.items() if c is None), None):
        raise LiteLVLMError(f"--budgets: {range_error(bad.tokens, num_patches)}")
    return [checked[b] for b in budgets]


def image_runs(runs: list[Run], n: int, image_id=None) -> list[Run]:
    """The planned runs (:func:`plan`) an image of ``n`` visual tokens keeps, each budget checked once against
    it (:meth:`Budget.checked`; one a fixed-N plan checked already is not checked again); the budgets above N
    are skipped with one warning naming the image."""
    checked = {b: b.checked(n) for b in dict.fromkeys(b for _, b in runs)}
    if over := sorted(b.column for b, c in checked.items() if c is None):
        log.warning("%s has %d visual tokens: budget(s) %s skipped", "the image" if image_id is None else
                    f"image {image_id}", n, ", ".join(map(str, over)))
    return [(m, checked[b]) for m, b in runs if checked[b] is not None]


def run_keys(runs: list[Run]) -> list[tuple[str, int]]:
    """The runs as a result table keys them: (method, :attr:`Budget.column`)."""
    return [(m, b.column) for m, b in runs]


def clip_record(pipe) -> dict:
    """What a run's ``config.json`` records of the CLIP, the same whatever the methods (a re-run may add
    some): ``clip_weights``, the hash of the CLIP whose patches are the visual tokens (GLaMM's); for a family
    pairing an external CLIP that only some methods load (the abilities' ``clip_side="mapped"``: UniPixel)
    None, with ``paired_clip``, that CLIP's description (model string, text, view) read without loading it."""
    side = pipe.abilities.clip_side
    if side == "mapped":
        return {"clip_weights": None, "paired_clip": pipe.describe().get("clip")}
    clip = pipe.clip if side != "none" else None
    return {"clip_weights": clip.weights_hash() if clip is not None else None}


def official_turns(pipe, records: list, seed: int, image_id: int, max_sentences: int) -> tuple[list, list]:
    """The official protocol of ``pipe``'s family for one image (its card's ``official_sample``): (sampled
    records in conversation order, (question, answer) turns)."""
    target = card(pipe.family).official_sample
    if target is None:
        raise LiteLVLMError(f"the {pipe.family} family has no official multi-expression protocol; use "
                            "--protocol per-expression")
    sample_official = target.get()
    # REFER-file order, as the official evaluation lists them
    records = sorted(records, key=lambda r: r.order)
    sample = sample_official([r.sentence for r in records], seed, image_id, max_sentences)
    return [records[i] for i in sample.indices], sample.turns


def prompt_records(pipe, records: list, seed: int, max_sentences: int) -> tuple[list, list | None]:
    """(the image's records one prompt holds, the official turns or None) for a one-image study: the family's
    own protocol when it holds a fixed number of expressions per prompt (its abilities'
    ``sentences_per_prompt``; the first ones in REFER-file order), its official sample in several turns
    otherwise (:func:`official_turns`)."""
    if (per_prompt := pipe.abilities.sentences_per_prompt) is not None:
        return sorted(records, key=lambda r: r.order)[:per_prompt], None
    return official_turns(pipe, records, seed, records[0].image_id, max_sentences)


def method_options(args, method: str, pipe=None) -> dict:
    """``ground``'s options for ``method`` from a study's arguments (the method's own mapping; as ``pipe``'s
    family runs it, where given)."""
    return (get_method(method) if pipe is None else pipe.spec(method)).options_from(args)


def pick_image(a) -> tuple[list, object]:
    """(the records, the image) of the sample image of a study's arguments (``refer_dir``, ``image_dir``,
    ``dataset``, ``split_by``, ``split``, ``image_id``: None for the split's first image id)."""
    records = load_refer(a.refer_dir, a.image_dir, a.dataset, a.split_by, a.split)
    by_image: dict[int, list] = {}
    for r in records:
        by_image.setdefault(r.image_id, []).append(r)
    if not by_image:
        raise LiteLVLMError(f"no sentences in split {a.split!r} of {a.refer_dir}")
    image_id = min(by_image) if a.image_id is None else a.image_id
    if image_id not in by_image:
        raise LiteLVLMError(f"--image-id {image_id}: no sentences of split {a.split!r} in {a.refer_dir}")
    recs = by_image[image_id]
    try:
        image = recs[0].image(exif_transpose(a.model))
    except OSError as e:
        raise LiteLVLMError(f"could not read image {recs[0].image_path}: {e}") from e
    return recs, image
