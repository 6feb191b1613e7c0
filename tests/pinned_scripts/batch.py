"""Several scripts of this folder in one process under one pin, so that the pinned packages are imported once;
run by ``tests/pinned_env.run_pinned``. Imports the scripts of this folder only.

Each job is a script's ``main(*args)``, as its own command line would call it. Between jobs, the packages a
script made up itself (a module without a spec, such as ``sa2va_qwen_official``'s ``sa2va_official``, which
points at one official folder) are dropped with their submodules, so that the next job imports its own.

usage: batch.py JOBS.json (a list of [script file name, arg, ...])
"""

import importlib
import json
import sys
from pathlib import Path


def made_up(name: str) -> bool:
    top = sys.modules.get(name.split(".")[0])
    return top is not None and getattr(top, "__spec__", None) is None


def main(jobs) -> None:
    for script, *args in json.loads(Path(jobs).read_text()):
        before = set(sys.modules)
        importlib.import_module(script.removesuffix(".py")).main(*args)
        for name in [n for n in sys.modules if n not in before and made_up(n)]:
            del sys.modules[name]


if __name__ == "__main__":
    main(*sys.argv[1:])
