"""``notebooks/00_explore.ipynb``: the explorer on a sample image, generated from here (``notebook_text``; a
test checks that the committed notebook is the generated one). The sample is a toy scene written in REFER
layout (``litelvlm toy-data``'s writer), so the referent's outline shows without any downloaded data.
"""

from __future__ import annotations

from pathlib import Path

from ..data.refer import load_refer
from ..machine.optional import optional_import
from ..registry.families import DEFAULT_MODEL, card_of, cards
from ..runs.io import write_text
from ..toy.refer_layout import write_refer

#: the default model, as the notebook's text names it
_DEFAULT = f"the tiny random {card_of(DEFAULT_MODEL).display_name} ({DEFAULT_MODEL})"
#: the families whose models the explorer draws (image families)
_IMAGE_FAMILIES = "/".join(c.display_name for c in cards() if c.input == "image")

#: where the notebook lives, relative to the repository
NOTEBOOK = Path("notebooks") / "00_explore.ipynb"

INTRO = f"""# 00 · Explore what a pruning method keeps

This project's own explorer (not part of LiteLVLM's official code or project page). Move the **budget** slider
(N down to 1) and pick a **method**: the kept visual tokens are drawn on the model's own token grid, LiteLVLM's
similarity-aware and context-aware tokens in their own colours. Beside them: each token's CLIP similarity to the
text's [EOS] embedding (the reversal), with the referent's outline when the image comes from a REFER folder. Choose
a **token** of the text to see its attention row in the CLIP text encoder's last layer ([EOS] -> [SOS]: the sink).
**predict mask** runs the model's grounding at the current method and budget once (then cached).

With the defaults the model is {_DEFAULT.replace('(', '(`').replace(')', '`)')} and the image a toy scene written now:
the views show that the pipeline works, not findings. Set `IMAGE`, `TEXTS` and `MODEL` for your own.
The same views as one self-contained page: `litelvlm explore --image IMG --text "..." --out page.html`."""  # noqa: E501

PARAMETERS = f"""IMAGE = None  # an image file; None: a toy scene written now in REFER layout (with its referent)
TEXTS = None  # its expression(s); None: the toy scene's sentence
MODEL = None  # None: {_DEFAULT}; any {_IMAGE_FAMILIES} model, or a CLIP (no masks)
METHODS = None  # None: litelvlm, litelvlm-ctx, clip_topsim, random, vispruner (those the model runs)"""  # noqa: E501

BODY = """import tempfile

from litelvlm.explore import explore
from litelvlm.explore.notebook import sample_image

if IMAGE is None:
    IMAGE, TEXTS = sample_image(tempfile.mkdtemp(prefix="litelvlm-explore-"))
explorer = explore(IMAGE, TEXTS, model=MODEL, methods=METHODS)
explorer"""


def sample_image(folder: str | Path) -> tuple[str, list[str]]:
    """A toy scene written as a one-image REFER folder under ``folder``: (its image file, [one of its
    sentences])."""
    root = write_refer(Path(folder) / "toy_refer", n_scenes=1, sentences_per_object=1)
    first = load_refer(root, None, split="all")[0]
    return str(first.image_path), [first.sentence]


def notebook_of(cells: list, id_prefix: str):
    """A generated notebook (``nbformat`` v4, no outputs) of ``cells`` on the Python 3 kernel, its cell ids
    ``<id_prefix>-<i>`` (stable: regenerating gives the same file), validated."""
    nbformat, v4 = optional_import("nbformat"), optional_import("nbformat.v4")
    nb = v4.new_notebook(cells=cells, metadata={
        "kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"},
        "language_info": {"name": "python"}})
    for i, cell in enumerate(nb.cells):
        cell["id"] = f"{id_prefix}-{i}"
    nbformat.validate(nb)
    return nb


def make_notebook():
    """The notebook (``nbformat`` v4, no outputs, stable cell ids)."""
    v4 = optional_import("nbformat.v4")
    return notebook_of([v4.new_markdown_cell(INTRO),
                        v4.new_code_cell(PARAMETERS, metadata={"tags": ["parameters"]}),
                        v4.new_code_cell(BODY)], "explore")


def notebook_text() -> str:
    """The exact file contents of ``notebooks/00_explore.ipynb``."""
    nbformat = optional_import("nbformat")
    return nbformat.writes(make_notebook()) + "\n"


def write_notebook(root: str | Path) -> Path:
    """(Re)write the notebook under the repository ``root``; returns its path."""
    path = Path(root) / NOTEBOOK
    write_text(path, notebook_text())
    return path
