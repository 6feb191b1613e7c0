"""``litelvlm figures``: its options (:class:`FiguresArgs`) and their checks.

Light (no matplotlib, no study module): a bad option is refused at once; :func:`analysis.figures.command.run`
imports :mod:`analysis.figures.compute` (the figure sets and their plots) after the checks.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from analysis.common.options.defaults import DEFAULT_OUT
from litelvlm.cli_args import add_dataclass_arguments, arg
from litelvlm.errors import LiteLVLMError
from litelvlm.models.model_spec import ModelSpec
from litelvlm.shared_options import model_option, out_option

#: ``--figure-set``'s help: the figure sets by name (each named after the study whose runs it draws)
SET_NAMES_HELP = ("only these figure sets (default: all). Each is named after the study whose runs it "
                  "draws: reversal, reversal_grid (a family's merged grid), sink, retention, grounding (the "
                  "paper's model), grounding_merged_grid (the merged-grid families), importance, efficiency, "
                  "validate (quantization), positions, video; and paired (grounding and video comparisons). "
                  "--list gives each one's title")


@dataclass
class FiguresArgs:
    results: str = arg(None, help="results folder: one subfolder per figure set (retention/, reversal/, ...) "
                                  "or one command's --out")
    smoke: bool = arg(False, help="without --results, make small results with tiny/bundled models first")
    out: str = out_option("folder for the PDF and PNG files (the default is a new folder in the working "
                          "directory; the committed figures/ is remade only with --out figures)", DEFAULT_OUT)
    figure_set: list[str] = arg(None, help=SET_NAMES_HELP, metavar="NAME")
    model: ModelSpec | None = model_option(None, help="model for smoke results (default: each figure set's "
                                           "tiny model)")
    via_notebooks: bool = arg(False, help="execute the notebooks with papermill instead of calling the "
                                          "figure sets' functions (same files)")


def add_arguments(parser) -> None:
    """The options of ``litelvlm figures``."""
    add_dataclass_arguments(parser, FiguresArgs)
    parser.add_argument("--list", action="store_true", help="list the figure sets and exit")
    parser.add_argument("--write-notebooks", action="store_true",
                        help="regenerate notebooks/ from the figure sets' functions and exit")


def check_args(a: FiguresArgs) -> None:
    """Raise naming the first invalid option, before anything is imported or written."""
    if a.results is None and not a.smoke:
        raise LiteLVLMError("give --results DIR, or --smoke to make small results with tiny models")
    if a.results is not None and not Path(a.results).is_dir():
        raise LiteLVLMError(f"--results {a.results!r} is not a folder")
