"""``litelvlm toy-data``: write a synthetic referring-segmentation set in the REFER layout."""

from __future__ import annotations

from dataclasses import dataclass

from ..cli_args import add_dataclass_arguments, arg, from_namespace
from ..shared_options import out_option, seed_option
from .refer_layout import DEMO_SEED, write_refer


@dataclass
class ToyDataArgs:
    out: str = out_option("output folder (refs(unc).p, instances.json, images/)")
    scenes: int = arg(64, help="number of scenes (images)", minimum=1)
    seed: int = seed_option("scene seed (the toy CLIP was trained on seed 1; 2 is its held-out set)",
                            DEMO_SEED)
    size: int = arg(224, help="image side in pixels (at least 32: a 3x3 layout of shapes)", minimum=32)
    split: str = arg("val", help="split name written into every ref")
    sentences: int = arg(2, help="referring expressions per object", minimum=1)
    overwrite: bool = arg(False, help="replace an existing toy folder at --out")


def add_arguments(parser) -> None:
    add_dataclass_arguments(parser, ToyDataArgs)


def run(ns) -> int:
    a = from_namespace(ToyDataArgs, ns)
    out = write_refer(a.out, a.scenes, a.seed, a.size, a.split, a.sentences, a.overwrite)
    print(f"wrote {a.scenes} synthetic scenes in REFER layout to {out} (split {a.split!r}, seed {a.seed}); "
          f"load with litelvlm.data.refer.load_refer({str(out)!r}, {str(out / 'images')!r}, "
          f"split={a.split!r})")
    return 0
