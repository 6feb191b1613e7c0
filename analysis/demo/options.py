"""``litelvlm demo``: its options (:class:`DemoArgs`) and their checks.

Light (no torch): a bad option is refused at once; :func:`analysis.demo.command.run` imports the demo
(:mod:`analysis.demo.compute`) after the checks.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass, replace

from litelvlm.cli_args import add_dataclass_arguments, arg
from litelvlm.errors import LiteLVLMError
from litelvlm.models.model_spec import ModelSpec
from litelvlm.shared_options import (
    clip_backend_option,
    device_option,
    model_option,
    n_boot_option,
    out_option,
    seed_option,
)

#: where the demo writes by default: an untracked folder of the working directory, never the
#: committed figures/demo/ of a checkout
DEFAULT_OUT = "litelvlm-demo"


@dataclass
class DemoArgs:
    """The options of one ``demo`` run."""

    model: ModelSpec | None = model_option(None, help="CLIP model (default: the bundled toy CLIP); a local "
                                           "save_pretrained folder, local-dir:PATH (open_clip), a hub id in "
                                           "the local cache, or tiny-random[:SEED]")
    backend: str | None = clip_backend_option()
    out: str = out_option("folder for the figures and demo_summary.json (the default is a new folder in the "
                          "working directory; the committed figures/demo/ is remade only with --out "
                          "figures/demo)", DEFAULT_OUT)
    work_dir: str = arg(None, help="folder for the synthetic set and the result tables "
                                   "(default: a temporary folder, removed at the end)")
    scenes: int = arg(48, help="synthetic scenes (images) for the two studies", minimum=2)
    show: int = arg(3, help="scenes shown in the token-selection and similarity figures", minimum=1)
    budget_share: float = arg(0.25, help="share of the visual tokens kept in the selection figure, in (0, 1] "
                                         "(`select --budget` is a count)", deprecated=("--budget",))
    n_boot: int = n_boot_option("bootstrap replicates for the confidence intervals")
    seed: int = seed_option("scene seed (the toy CLIP was trained on seed 1 and checked on seed 2)", 3)
    smoke: bool = arg(False, help="tiny and fast (for CI): 6 scenes, 2 shown, 100 bootstrap replicates")
    device: str = device_option()


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the ``demo`` options (one per :class:`DemoArgs` field) to ``parser``."""
    add_dataclass_arguments(parser, DemoArgs)


def check_args(a: DemoArgs) -> DemoArgs:
    """``a`` with ``--smoke``'s sizes applied; a bad option is a :class:`~litelvlm.errors.LiteLVLMError`."""
    if a.smoke:
        a = replace(a, scenes=min(a.scenes, 6), show=min(a.show, 2), n_boot=min(a.n_boot, 100))
    if not 0 < a.budget_share <= 1:
        raise LiteLVLMError(f"--budget-share is a share of the tokens in (0, 1], got {a.budget_share}")
    return a


#: this study's options (``analysis.common.runs.study.Study``)
ARGS = DemoArgs
