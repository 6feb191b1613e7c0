"""A server that runs this folder's scripts as ``python -P SCRIPT ARG...`` would, each in a process forked
from it, so that the packages every pin takes from this environment (torch and what the pinned transformers
imports of it, scipy, sympy, torchvision, numpy, Pillow) are imported once a test process instead of once a
launch; started by ``tests/pinned_env.run_pinned``. Imports those environment packages only: never
transformers, tokenizers, huggingface-hub, accelerate or qwen-vl-utils (a pin's own, or importing one), nor
this project.

Each request (a JSON line on stdin: the pinned folder, the script, its arguments, the files for its stdout and
stderr, the intra-op thread count) forks a process that puts the pinned folder first on ``sys.path``, as the
pinned interpreter's ``PYTHONPATH`` did, and runs the script as ``__main__``; nothing a script imports or
patches outlives its process. The server answers ``{"pid"}`` at the fork and ``{"rc", "cpu_s"}`` when it
ends (it waits for each, so their CPU time is its children's). When its stdin closes it ends at once, without
the interpreter's teardown. The quantization backends are hidden from the scripts (no script quantizes;
transformers imports them whenever they are installed).

usage: forkserver.py (requests on stdin until it closes)
"""

import importlib
import json
import os
import runpy
import sys
import traceback

#: packages of this environment that no pin installs, imported here once
SHARED = ("numpy", "PIL.Image", "torch", "torch._dynamo", "torch.distributed.tensor",
          "torch.nn.attention.flex_attention", "torchvision", "scipy.optimize", "sympy", "safetensors.torch",
          "requests", "jinja2", "yaml", "filelock")
#: packages a pin installs (or that import one): never imported here
PINNED = ("transformers", "tokenizers", "huggingface_hub", "accelerate", "qwen_vl_utils")


def preload() -> None:
    for name in ("torchao", "bitsandbytes"):
        sys.modules[name] = None
    for name in SHARED:
        try:
            importlib.import_module(name)
        except ImportError:
            pass
    leaked = [n for n in sys.modules if n.split(".")[0] in PINNED]
    if leaked:
        raise RuntimeError(f"the server imported a pinned package: {sorted(leaked)[:5]}")


def child(request: dict) -> None:
    """In the forked process: the script as its command line would run it; never returns."""
    code = 1
    try:
        null = os.open(os.devnull, os.O_RDONLY)
        os.dup2(null, 0)
        for fd, path in ((1, request["stdout"]), (2, request["stderr"])):
            f = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
            os.dup2(f, fd)
            os.close(f)
        import torch

        os.environ["OMP_NUM_THREADS"] = str(request["threads"])
        torch.set_num_threads(request["threads"])
        os.environ["PYTHONPATH"] = os.pathsep.join([request["folder"], sys.path[0]])
        sys.path.insert(0, request["folder"])
        # the pins are installed without bytecode (pinned_env.py): what a run imports is compiled once and
        # kept under the pinned folder (a prefix: nothing is written beside a source, ../shared's official
        # code among them)
        sys.pycache_prefix = os.path.join(request["folder"], ".pycache")
        sys.dont_write_bytecode = False
        sys.argv = [request["script"], *request["args"]]
        runpy.run_path(request["script"], run_name="__main__")
        code = 0
    except SystemExit as e:
        code = e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
    except BaseException:
        traceback.print_exc()
    finally:
        try:
            sys.stdout.flush()
            sys.stderr.flush()
        finally:
            os._exit(code)


def main() -> None:
    preload()
    answer = os.fdopen(os.dup(1), "w")
    print(json.dumps({"ready": True}), file=answer, flush=True)
    for line in sys.stdin:
        request = json.loads(line)
        pid = os.fork()
        if pid == 0:
            answer.close()
            child(request)
        print(json.dumps({"pid": pid}), file=answer, flush=True)
        _, status, usage = os.wait4(pid, 0)
        print(json.dumps({"rc": os.waitstatus_to_exitcode(status), "cpu_s": usage.ru_utime + usage.ru_stime}),
              file=answer, flush=True)
    # every run has ended and been answered: end now, without tearing down the torch imported above (about a
    # second, which the test process closing this server would wait for at the end of its session)
    answer.flush()
    os._exit(0)


if __name__ == "__main__":
    main()
