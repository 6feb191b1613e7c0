"""What the explorer shows, read from the library's own calls: one image, its expressions, one model.

:class:`ExploreData` runs the per-image work once (a family's ``prepare``, or a CLIP's traces as ``select``
runs them) and then answers, each from the call ``select`` or ``ground`` makes: the tokens a method keeps at a
budget (:meth:`ExploreData.kept`, cached per method and budget), the predicted masks
(:meth:`ExploreData.masks`, a family's ``ground``, on demand and cached), the per-token CLIP similarity to
each text's [EOS] (:func:`litelvlm.pruning.scores.similarity`, LiteLVLM's), and the text encoder's last-layer
attention rows (:meth:`litelvlm.clip.traces.TextTrace.attention`). It adds no second way to compute any of
them.
"""

from __future__ import annotations

import warnings
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image

from ..clip import load_clip
from ..commands.select import NON_PATCH, NOT_INDEX_SETS, _load_image
from ..data.refer import load_refer
from ..data.segmentation import decode_segmentation
from ..errors import LiteLVLMError
from ..image_resize import image_resize_kwargs
from ..lvlm.prune import clip_side
from ..method import Method
from ..methods import get_method
from ..methods.select import select
from ..pruning import SelectorInputs, check_budget
from ..pruning.scores import similarity
from ..registry import families
from ..registry.families import family_input, family_of, get_family, names_family
from ..registry.provenance import weights_banner
from ..threads import default_threads, torch_threads
from .defaults import DEFAULT_METHODS, DEFAULT_MODEL, image_models

#: methods whose one selection gives every budget: ``baseline`` methods keep all N whatever K (read as they
#: are); these read the first K of one ranking their selection at N carries (``parts[...]``), equal to
#: selecting at K (tested for every K in tests/litelvlm/test_explore.py)
PREFIX_OF_PART = {"litelvlm-context": "context"}


@dataclass
class Kept:
    """The tokens a method keeps at one budget: indices in the LLM's order (negative: no single token, as
    ``select`` reports them) and, per index, the part of the method that supplied it ("" where it names
    none)."""

    indices: list[int]
    parts: list[str]

    def part_names(self) -> list[str]:
        """The parts that supplied at least one kept token, in first-seen order."""
        return list(dict.fromkeys(p for p in self.parts if p))


def kept_of(indices: list[int], parts: dict) -> Kept:
    """``indices`` labelled by the first part of a selection holding each (the rule of
    :func:`litelvlm.commands.select.kept_per_part`); "" without parts."""
    sets = {k: {int(i) for i in v.flatten().tolist()} for k, v in parts.items() if k not in NOT_INDEX_SETS}
    labels = [next((k for k, s in sets.items() if i in s), NON_PATCH.get(i, "other" if sets else ""))
              for i in indices]
    return Kept([int(i) for i in indices], labels)


def find_referent(image_path: str | Path, texts: list[str]) -> tuple[list[np.ndarray | None], str]:
    """Per text, the referent's mask (original image size) when the image lies in a REFER folder's ``images/``
    and one of its sentences is the text (case and outer spaces ignored), else None; and a note saying what
    was found."""
    image_path = Path(image_path).resolve()
    root = image_path.parent.parent
    refs = sorted(root.glob("refs(*).p"))
    if image_path.parent.name != "images" or not refs or not (root / "instances.json").is_file():
        return [None] * len(texts), "not from a REFER folder: no referent outline"
    split_by = refs[0].name[len("refs("):-len(").p")]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        records = [r for r in load_refer(root, None, split="all", split_by=split_by)
                   if Path(r.image_path).resolve() == image_path]
    out = []
    for text in texts:
        match = next((r for r in records if r.sentence.strip().lower() == text.strip().lower()), None)
        out.append(None if match is None
                   else decode_segmentation(match.segmentation, match.height, match.width))
    found = sum(m is not None for m in out)
    return (out, f"REFER folder {root.name}: {found} of {len(texts)} texts are sentences of this image "
            "(outlined)")


@dataclass
class ExploreData:
    """One image, its texts and one model, with every view's data; build it with :func:`load`."""

    model: str
    image_path: str
    texts: list[str]
    family: str | None
    grid: tuple[int, int]
    window: np.ndarray                  # (H, W, 3) uint8: the image region the visual tokens cover
    similarity: np.ndarray              # (T, N) each text's [EOS] embedding . each visual token (LiteLVLM's)
    clip_texts: list[str]               # what CLIP's text encoder embedded (GLaMM: the questions)
    tokens: list[list[str]]             # per text, its CLIP tokens up to [EOS]
    attention: list[np.ndarray]         # per text, (S, S) last-layer attention (mean over heads), causal
    referent: list[np.ndarray | None]   # per text, the referent's mask on the window, or None
    referent_note: str
    banner: str | None
    methods: list[str]
    seed: int = 0
    pipe: object = field(default=None, repr=False)
    prepared: object = field(default=None, repr=False)
    inputs: object = field(default=None, repr=False)
    #: (method, budget) -> Kept; and -> (T, H, W) bool masks on the window
    selections: dict = field(default_factory=dict, repr=False)
    mask_cache: dict = field(default_factory=dict, repr=False)
    #: method -> the ranking its selection at N carries (:data:`PREFIX_OF_PART`)
    rankings: dict = field(default_factory=dict, repr=False)
    clip: object = field(default=None, repr=False)
    #: how many times the library's selection (``select``, ``clip_side``, ``ground``) was called
    calls: int = 0

    @property
    def n(self) -> int:
        """N: the visual tokens (the top of the budget slider)."""
        return int(self.grid[0] * self.grid[1])

    def spec(self, method: str) -> Method:
        """The method as this model runs it (a family's variant where it has one)."""
        return self.pipe.spec(method) if self.pipe is not None else get_method(method)

    def top_budget(self, method: str) -> int:
        """The largest budget of ``method``: N (N + its extra tokens for PruMerge)."""
        return self.n + self.spec(method).extra_tokens

    def one_selection(self, method: str) -> bool:
        """Whether every budget of ``method`` is read from its one selection at N (see
        :data:`PREFIX_OF_PART`)."""
        return self.spec(method).baseline or method in PREFIX_OF_PART

    def kept(self, method: str, budget: int) -> Kept:
        """The tokens ``method`` keeps at ``budget``: computed once (the call ``select`` makes), then
        cached."""
        key = (method, int(budget))
        if key in self.selections:
            return self.selections[key]

        # a Count: the library does not check again
        k = check_budget(budget, self.n, self.spec(method).extra_tokens)
        if self.one_selection(method) and budget != self.n:
            whole = self.kept(method, self.n)
            if self.spec(method).baseline:  # every token, whatever the budget
                self.selections[key] = whole
            else:  # the first K of the ranking its selection at N carries
                self.selections[key] = Kept([int(i) for i in self.rankings[method][:budget]],
                                            [PREFIX_OF_PART[method]] * budget)
            return self.selections[key]
        self.selections[key] = self._select(method, k)
        return self.selections[key]

    def _select(self, method: str, budget: int) -> Kept:
        """One selection by the library: a family's ``clip_side`` (as ``ground`` runs a CLIP-side method) or
        its ``ground`` (a method acting with the LLM, whose masks are cached too); a CLIP's ``select``."""
        with self.threads():
            return self._select_now(method, budget)

    def _select_now(self, method: str, budget: int) -> Kept:
        self.calls += 1
        spec = self.spec(method)
        if self.pipe is None:
            sel = select(method, self.inputs, budget)
        elif spec.acts_on_clip:
            _, sel = clip_side(self.pipe, self.prepared, spec, budget, None)
        else:
            out = self.pipe.ground(self.prepared, method, budget)
            self.mask_cache[(method, budget)] = self._on_window(out.masks)
            sel = out.selection
        if method in PREFIX_OF_PART and budget == self.n:
            self.rankings[method] = sel.parts[PREFIX_OF_PART[method]].tolist()
        return kept_of(sel.indices.tolist(), sel.parts)

    def threads(self) -> AbstractContextManager:
        """A context in which torch runs with the threads the command line gives this model (1 for a small
        one)."""
        return torch_threads(default_threads(self.model))

    def precompute(self, method: str, budgets=None) -> None:
        """Compute ``method``'s selections at ``budgets`` (default: every budget N..1) now."""
        with self.threads():
            for k in (range(self.top_budget(method), 0, -1) if budgets is None else budgets):
                self.kept(method, int(k))

    @property
    def predicts_masks(self) -> bool:
        """Whether the model predicts masks (a family's pipeline; a CLIP alone does not)."""
        return self.pipe is not None

    def masks(self, method: str, budget: int) -> np.ndarray:
        """(T, H, W) bool: the family's predicted mask of each text on the window, computed once by
        ``ground``."""
        key = (method, int(budget))
        if key not in self.mask_cache:
            if self.pipe is None:
                raise LiteLVLMError(f"model {str(self.model)!r} is a CLIP, which predicts no mask: give a "
                                    "grounding model (e.g. tiny-random:0) for the predicted masks")
            self.calls += 1
            with self.threads():
                out = self.pipe.ground(self.prepared, method, int(budget))
            self.mask_cache[key] = self._on_window(out.masks)
            self.selections.setdefault(key, kept_of(out.selection.indices.tolist(), out.selection.parts))
        return self.mask_cache[key]

    def _on_window(self, masks) -> np.ndarray:
        """(T, H, W) masks at the original size -> on the window (the family's own crop of the image)."""
        return np.stack(
            [self.to_window(m) for m in np.asarray(masks.cpu() if hasattr(masks, "cpu") else masks)])

    def to_window(self, mask: np.ndarray) -> np.ndarray:
        """A (H, W) mask of the original image mapped onto the window, as the image is (the same library
        call)."""
        img = Image.fromarray(np.asarray(mask, dtype=np.uint8) * 255).convert("RGB")
        return _window_of(self.pipe, self.clip, img)[..., 0] > 127


def _window_of(pipe, clip, image) -> np.ndarray:
    """(H, W, 3) uint8: the region of ``image`` the visual tokens cover: a family's ``visual_window``, or what
    a CLIP sees (its preprocessing undone, as ``select --save-overlay`` draws it)."""
    if pipe is not None:
        return np.asarray(pipe.visual_window(image), dtype=np.uint8)
    shown = clip.to_display(clip.preprocess([image]))[0].numpy()
    return np.round(shown * 255).astype(np.uint8)


def _token_strings(text) -> list[list[str]]:
    """Per text, its CLIP tokens up to [EOS] as the backend's tokenizer spells them."""
    tok = text.backend.tokenizer
    out = []
    for row, eos in zip(text.input_ids.tolist(), text.eos_index.tolist()):
        ids = row[:eos + 1]
        if hasattr(tok, "convert_ids_to_tokens"):
            words = tok.convert_ids_to_tokens(ids)
        else:  # open_clip's SimpleTokenizer
            words = [tok.decode([i]) for i in ids]
        words = [w.replace("</w>", "").strip() or "·" for w in words]
        words[0], words[-1] = "[SOS]", "[EOS]"
        out.append(words)
    return out


def load(image: str, texts: list[str], model: str | None = None, methods: list[str] | None = None,
         seed: int = 0, image_resize: str = "torchvision") -> ExploreData:
    """Everything the explorer shows for ``image`` and ``texts`` with ``model`` (default
    :data:`DEFAULT_MODEL`): a family's ``prepare`` or a CLIP's traces, run once; ``image_resize``:
    ``--image-resize`` (a family with one)."""
    model = model or DEFAULT_MODEL
    texts = list(texts)
    if not texts:
        raise LiteLVLMError("give at least one text (an expression to ground)")
    family = family_of(model) if names_family(model) else None
    if family is not None and family_input(model) != "image":
        raise LiteLVLMError(f"--model {model}: the {family} family reads a video; the explorer reads one "
                            "image")
    if family is not None:  # the methods the family refuses, asked of its class before the model loads

        cls = get_family(family)
        methods = _methods(cls.__new__(cls), methods)
    else:
        methods = _methods(None, methods)

    with torch_threads(default_threads(model)):  # as the command line runs it (1 thread for a small model)
        return _load(image, texts, model, family, methods, seed, image_resize)


def _load(image: str, texts: list[str], model: str, family: str | None, methods: list[str], seed: int,
          image_resize: str = "torchvision") -> ExploreData:
    pil = _load_image(image)
    pipe = prepared = clip = None
    if family is not None:
        pipe = families.load_pipeline(model, **image_resize_kwargs(image_resize))
        prepared = pipe.prepare(pil, texts, seed=seed)
        inputs = prepared.selector_inputs()
        grid = tuple(int(v) for v in pipe.visual_grid(prepared))
    else:
        clip = load_clip(model)
        vision = clip.trace_image(clip.preprocess([pil]))
        inputs = SelectorInputs(vision=vision, text=clip.encode_text(texts), seed=seed)
        grid = tuple(int(v) for v in clip.grid)
    text = inputs.text
    sim = similarity(inputs, layer=inputs.feature_layer).float().cpu().numpy()
    attn = text.attention(-1).float().mean(1).cpu().numpy()  # (T, S, S), mean over heads
    eos = text.eos_index.tolist()
    data = ExploreData(model=model, image_path=str(image), texts=texts, family=family, grid=grid,
                       window=_window_of(pipe, clip, pil), similarity=sim.reshape(len(texts), -1),
                       clip_texts=list(text.texts), tokens=_token_strings(text),
                       attention=[attn[t, :e + 1, :e + 1] for t, e in enumerate(eos)], referent=[],
                       referent_note="", banner=weights_banner(model), methods=methods, seed=seed, pipe=pipe,
                       prepared=prepared, inputs=inputs, clip=clip)
    referent, data.referent_note = find_referent(image, texts)
    data.referent = [None if m is None else data.to_window(m) for m in referent]
    return data


def _methods(pipe, methods: list[str] | None) -> list[str]:
    """The methods to show: those named (each must run on the model), or the defaults the model runs."""
    def error(name: str) -> str | None:
        if pipe is not None:
            return pipe.method_error(name)
        if get_method(name).acts_with_llm:
            return (f"method {name!r} acts {get_method(name).where} and needs a grounding model (--model "
                    f"{', '.join(image_models())}, or a checkpoint folder of one)")
        return None

    if methods:
        for name in methods:
            if why := error(name):
                raise LiteLVLMError(why)
        return list(dict.fromkeys(methods))
    return [m for m in DEFAULT_METHODS if error(m) is None]
