"""``litelvlm explore``: write the explorer as one self-contained HTML page (this project's own tool).

Every argument and path is checked before torch is imported (a bad one: exit 2, one line); then the image and
its texts go through the model once (:func:`litelvlm.explore.data.load`) and the page is written in one piece.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from ..budget import Budget, BudgetError
from ..cli_args import add_dataclass_arguments, arg, from_namespace, read_declared, split_list
from ..errors import LiteLVLMError
from ..image_resize import image_resize_arg
from ..models.model_spec import ModelSpec
from ..registry import families
from ..registry.families import check_image_resize
from ..shared_options import budgets_option, methods_option, model_option, seed_option
from .defaults import DEFAULT_MODEL, image_models


@dataclass
class ExploreArgs:
    image: str = arg(None, help="image file (required)")
    text: list[str] = arg(None, help="an expression to ground (repeat --text for several; required)",
                          flag="--text", nargs="append")
    model: ModelSpec | None = model_option(None, help="a grounding model (a random preset such as "
                                           f"{' or '.join(image_models())}, or a checkpoint folder: kept "
                                           "tokens on its own grid, masks) or a CLIP (tiny336-random, a "
                                           f"folder: no masks); default: {DEFAULT_MODEL}, "
                                           f"{families.card_of(DEFAULT_MODEL).display_name}'s random preset")
    methods: list[str] = methods_option(None, help="methods to show (default: litelvlm, litelvlm-ctx, "
                                        "clip_topsim, random, vispruner, those the model runs)")
    budgets: list[Budget] | None = budgets_option(None, help="budgets stored in the page for every method "
                                                  "(default: every K from N to 1); the slider snaps to the "
                                                  "nearest stored one")
    mask_budgets: list[Budget] | None = budgets_option(None, nonempty=False, help="budgets at which the "
                                                       "page holds each method's predicted masks (default: "
                                                       "N, N/3, N/9, N/18: 576, 192, 64, 32 at N = 576; an "
                                                       "empty value \"\": no masks)")
    page: str = arg(None, help="the HTML file to write (required)", flag="--out", metavar="PAGE.html")
    seed: int = seed_option("seed for random methods")
    image_resize: str = image_resize_arg()

    def __post_init__(self) -> None:
        read_declared(self)   # a Python caller's "64,16" or ints: Budgets; the command line's are read


def add_arguments(parser) -> None:
    add_dataclass_arguments(parser, ExploreArgs)


def check_args(a: ExploreArgs) -> None:
    """Refuse a missing or bad argument with one line, importing nothing heavy (the image's existence and the
    model folder and method names are checked by the command line's common checks before this)."""
    missing = [flag for flag,
               value in (("--image", a.image), ("--text", a.text), ("--out", a.page)) if not value]
    if missing:
        raise LiteLVLMError(f"{' and '.join(missing)} required")
    if not os.path.isfile(os.path.expanduser(a.image)):
        raise LiteLVLMError(f"--image {a.image!r} is not a file")
    if any(not t.strip() for t in a.text):
        raise LiteLVLMError("--text: an expression is empty")
    if not a.page.lower().endswith((".html", ".htm")):
        raise LiteLVLMError(f"--out must name an .html file, got {a.page!r}")
    if os.path.isdir(a.page):
        raise LiteLVLMError(f"--out {a.page!r} is a folder; give a file name")
    folder = os.path.dirname(os.path.abspath(os.path.expanduser(a.page)))
    # missing folders are made when the page is written, as every --out's are
    while not os.path.exists(folder):
        folder = os.path.dirname(folder)
    if not os.path.isdir(folder):
        raise LiteLVLMError(f"--out {a.page!r}: {folder!r} is a file, not a folder")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise LiteLVLMError(f"--out {a.page!r}: folder {folder!r} is not writable")
    check_image_resize(a.image_resize, a.model or DEFAULT_MODEL)   # a family with a resize of its own
    # a budget above the family card's N, before anything loads
    families.check_budgets_fit(a.model or DEFAULT_MODEL, [*(a.budgets or ()), *(a.mask_budgets or ())],
                               "--budgets/--mask-budgets")
    if a.model:
        families.check_image_model(a.model, "explore")   # a video family's model: before anything loads


def run(ns) -> int:
    a = from_namespace(ExploreArgs, ns)
    a.model = families.family_or_clip(a.model) if a.model else None   # resolved once (a CLIP too)
    check_args(a)
    from .data import load
    from .page import link_budget, write_page

    data = load(a.image, a.text, model=a.model, methods=split_list(a.methods) or None, seed=a.seed,
                image_resize=a.image_resize)
    top = max(data.top_budget(m) for m in data.methods)
    try:  # the budgets' one range check; the page's slider stores the counts K (a method keeps those it can)
        ks, masks = ([b.count(top) for b in budgets] if budgets is not None else None
                     for budgets in (a.budgets, a.mask_budgets))
    except BudgetError as e:
        raise LiteLVLMError(f"--budgets/--mask-budgets: {e}, the visual tokens of {data.model}") from None
    path = write_page(data, a.page, ks, masks)
    size = os.path.getsize(path)
    print(f"litelvlm explore: wrote {path} ({size / 1e6:.2f} MB; open it in a browser, e.g. "
          f"{path}#method={data.methods[0]}&budget={link_budget(data.n)})")
    if data.banner:
        print(data.banner)
    return 0
