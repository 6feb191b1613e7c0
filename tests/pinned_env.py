"""The official side of a comparison under the official repository's own pins, in a second environment.

Where an official repository pins a transformers version whose behaviour differs from this project's on the
compared path (a ``hidden_states`` entry whose meaning changed, a renamed config key, another image resize),
running the official code under this project's transformers compares it with the wrong reference. A
:data:`PINS` entry names the pinned packages; :func:`pinned_env` installs them from the package registry into
a folder per set of packages (``pip install --target``, no dependencies: the rest comes from this environment;
no bytecode: each run keeps the bytecode of what it imports in the folder's ``.pycache``), once, and
:func:`run_pinned` runs a script with that folder first on ``sys.path``, exchanging tensors through files. The
folder is kept under ``LITELVLM_PINNED_ENVS`` (default ``~/.cache/litelvlm/pinned``) across sessions. Tests
skip with the reason when the registry cannot be reached. The script imports the official code and the pinned
packages only: it shares no step with this project. Each run is a process forked from a server
(``pinned_scripts/forkserver.py``, one a test process, closed at the session's end) that has imported the
packages no pin installs (torch above all), so that a run costs the pinned packages' import and its work.
"""

from __future__ import annotations

import atexit
import hashlib
import json
import os
import select
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

#: name -> (the repository and file that pin, the packages installed from the registry)
PINS = {
    # bytedance/Sa2VA @9832e1a pyproject.toml: extra "latest" (transformers==4.57.0, the HF release's
    # models_qwen3vl code needs it); qwen_vl_utils unpinned there; transformers 4.57.0's own bounds for
    # huggingface-hub (<1.0) and tokenizers (<=0.23)
    "sa2va": ("bytedance/Sa2VA @9832e1a pyproject.toml [latest]",
              ("transformers==4.57.0", "huggingface-hub==0.36.2", "tokenizers==0.22.1",
               "qwen-vl-utils==0.0.14")),
    # PolyU-ChenLab/UniPixel @5c8e941 requirements.txt: transformers==4.53.3 (torch 2.7.1 there); transformers
    # 4.53.3's own bounds for huggingface-hub (<1.0) and tokenizers (<0.22)
    "unipixel": ("PolyU-ChenLab/UniPixel @5c8e941 requirements.txt",
                 ("transformers==4.53.3", "huggingface-hub==0.36.2", "tokenizers==0.21.4")),
    # mbzuai-oryx/VideoGLaMM @6b15b1e README: transformers==4.41.0 (torch 2.1.2 there); 4.41.0's own bounds
    # for tokenizers (<0.20)
    "videoglamm": ("mbzuai-oryx/VideoGLaMM @6b15b1e README",
                   ("transformers==4.41.0", "huggingface-hub==0.36.2", "tokenizers==0.19.1")),
    # sejong-rcv/LiteLVLM @5896153 requirements.txt: transformers@git+...@cae78c46 (4.28.0.dev0), which no
    # registry holds: its nearest release, 4.28.1, the reference of the project's other 4.28 transcriptions
    "glamm": ("sejong-rcv/LiteLVLM @5896153 requirements.txt (nearest release)",
              ("transformers==4.28.1", "huggingface-hub==0.36.2", "tokenizers==0.13.3")),
    # pkunlp-icler/FastV @d165972 src/LLaVA/pyproject.toml (FastV's LLaVA, its own copy of 4.31.0 in
    # src/transformers) and 42Shawn/LLaVA-PruMerge @097c041 pyproject.toml: transformers==4.31.0,
    # tokenizers>=0.12.1,<0.14 (torch 2.0.1 there); 4.31.0's own bound for huggingface-hub (<1.0)
    "llava-4.31": ("pkunlp-icler/FastV @d165972, 42Shawn/LLaVA-PruMerge @097c041 pyproject.toml",
                   ("transformers==4.31.0", "huggingface-hub==0.36.2", "tokenizers==0.13.3")),
    # LLaVA-1.5's pyproject.toml as the LLaVA-based methods ship it: Theia-4869/VisPruner @aefa01a,
    # Theia-4869/CDPruner @9541616, vbdi/divprune @799e2d9 (LLaVA/), Danielement321/HiPrune @6e83a12
    # (LLaVA/), Gumpest/SparseVLMs @26a5f48, Tencent/SelfEvolvingAgent @a82450e (VScan/); VisionZip
    # @3151f6d installs "the LLaVA environment": transformers==4.37.2, tokenizers==0.15.1 (torch 2.1.2
    # there); 4.37.2's own bound for huggingface-hub (<1.0)
    "llava-4.37": ("LLaVA-1.5 pyproject.toml of VisPruner, CDPruner, DivPrune, HiPrune, SparseVLM, VScan",
                   ("transformers==4.37.2", "huggingface-hub==0.36.2", "tokenizers==0.15.1")),
    # Danielement321/HiPrune @6e83a12 setup_qwen.sh L11 (and bench_qwen.sh L5): transformers==4.52.0 for the
    # Qwen2.5-VL variant; 4.52.0's own bounds for huggingface-hub (<1.0) and tokenizers (<0.22)
    "hiprune-qwen": ("Danielement321/HiPrune @6e83a12 setup_qwen.sh",
                     ("transformers==4.52.0", "huggingface-hub==0.36.2", "tokenizers==0.21.4")),
    # Tencent/SelfEvolvingAgent @a82450e VScan/README.md L37: transformers==4.51.3 for Qwen2.5-VL; 4.51.3's
    # own bounds for huggingface-hub (<1.0) and tokenizers (<0.22)
    "vscan-qwen": ("Tencent/SelfEvolvingAgent @a82450e VScan/README.md",
                   ("transformers==4.51.3", "huggingface-hub==0.36.2", "tokenizers==0.21.4")),
    # FireRedTeam/IVC-Prune @03afd9c transformers/ (a modified copy of 4.51.3, __init__.py L21, installed by
    # VLMEvalKit/requirements.txt L26-27): the release it was copied from; its bounds as above
    "ivc-prune": ("FireRedTeam/IVC-Prune @03afd9c transformers/ (the release it modifies)",
                  ("transformers==4.51.3", "huggingface-hub==0.36.2", "tokenizers==0.21.4")),
}

ROOT = Path(__file__).resolve().parents[1]
SCRIPTS = Path(__file__).resolve().parent / "pinned_scripts"


def _home() -> Path:
    """``LITELVLM_PINNED_ENVS``, else ``~/.cache/litelvlm/pinned``, else (a home that cannot be written) a
    folder under the temporary directory."""
    if "LITELVLM_PINNED_ENVS" in os.environ:
        return Path(os.environ["LITELVLM_PINNED_ENVS"])
    home = Path.home() / ".cache" / "litelvlm" / "pinned"
    try:
        home.mkdir(parents=True, exist_ok=True)
        return home
    except OSError:
        return Path(tempfile.gettempdir()) / "litelvlm-pinned"


def pinned_env(name: str) -> Path:
    """The folder holding ``PINS[name]``'s packages, installed on first use (under a file lock); skips the
    test, with pip's last line, when they cannot be installed (no registry). Pins of the same packages share
    one folder (named by its first package and the packages' digest)."""
    from filelock import FileLock

    packages = PINS[name][1]
    key = hashlib.sha256("\n".join(packages).encode()).hexdigest()[:12]
    folder = _home() / f"{packages[0].replace('==', '-')}-{key}"
    done = folder / ".installed"
    if done.is_file():
        return folder
    folder.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(folder) + ".lock"):
        if done.is_file():
            return folder
        # --no-compile: a pinned script imports a small part of transformers; each pinned run keeps the
        # bytecode of what it imports under the folder (forkserver.py), not pip compiling every module
        got = subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-compile",
                              "--target", str(folder), "--upgrade", *packages], capture_output=True,
                             text=True, timeout=600)
        if got.returncode != 0:
            last = (got.stderr.strip().splitlines() or ["(no output)"])[-1]
            pytest.skip(f"the official pins of {name} ({', '.join(packages)}) could not be installed from "
                        f"the package registry: {last}")
        done.write_text("\n".join(packages) + "\n")
    return folder


class _Server:
    """``tests/pinned_scripts/forkserver.py``, started on the first :func:`run_pinned` of a process and closed
    by :func:`close_pinned_server` (the test session's end) or at exit."""

    def __init__(self, threads: int):
        self.threads, self.pending = threads, b""
        self.log = tempfile.NamedTemporaryFile(prefix="litelvlm-pinned-server-", suffix=".log", delete=False)
        env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONSAFEPATH")}
        env.update(PYTHONPATH=str(SCRIPTS), PYTHONNOUSERSITE="1", HF_HUB_OFFLINE="1",
                   TRANSFORMERS_NO_ADVISORY_WARNINGS="1", OMP_NUM_THREADS=str(threads))
        self.proc = subprocess.Popen([sys.executable, "-P", str(SCRIPTS / "forkserver.py")], env=env,
                                     cwd=str(SCRIPTS), stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=self.log, bufsize=0, start_new_session=True)
        if self.answer(600) is None:
            self.close(kill=True)
            pytest.fail("the server of pinned runs (tests/pinned_scripts/forkserver.py) did not start")

    def answer(self, timeout: float) -> dict | None:
        """The server's next line, or None when it did not come within ``timeout`` seconds or the server
        ended."""
        fd = self.proc.stdout.fileno()
        while b"\n" not in self.pending:
            ready, _, _ = select.select([fd], [], [], timeout)
            chunk = os.read(fd, 1 << 16) if ready else b""
            if not chunk:
                return None
            self.pending += chunk
        line, self.pending = self.pending.split(b"\n", 1)
        return json.loads(line)

    def run(self, folder: Path, script: str, args: tuple, timeout: int) -> tuple[int | None, str, str]:
        """(exit code, stdout, stderr) of ``script args`` under ``folder``; None when it timed out (then the
        server is stopped)."""
        with tempfile.TemporaryDirectory(prefix="litelvlm-pinned-run-") as tmp:
            out, err = Path(tmp) / "stdout", Path(tmp) / "stderr"
            request = {"folder": str(folder), "script": str(SCRIPTS / script), "args": list(args),
                       "stdout": str(out), "stderr": str(err), "threads": self.threads}
            self.proc.stdin.write((json.dumps(request) + "\n").encode())
            started = self.answer(60)
            done = self.answer(timeout) if started is not None else None
            if done is None:
                self.close(kill=True)
            text = [p.read_text(errors="replace") if p.is_file() else "" for p in (out, err)]
            return (None if done is None else done["rc"]), text[0], text[1]

    def close(self, kill: bool = False) -> None:
        if kill:
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        else:
            self.proc.stdin.close()
        self.proc.wait()
        self.proc.stdout.close()
        self.log.close()
        os.unlink(self.log.name)


_SERVER: list = []   # the running server, if any


def close_pinned_server() -> None:
    """Stop this process's server of pinned runs (waiting for it, so its CPU time is counted here)."""
    while _SERVER:
        _SERVER.pop().close()


def run_pinned(name: str, script: str, *args: str, timeout: int = 600) -> str:
    """Run ``tests/pinned_scripts/<script>`` with ``args`` under ``PINS[name]``: its folder first on the path,
    then the scripts' folder (their shared ``results.py``), no user site, this project's folder not on the
    path, and this process's intra-op thread count (so that float sums run in the same order on both sides);
    in a process of its own, forked from this test process's server (``pinned_scripts/forkserver.py``), which
    has imported the packages no pin installs. Its stdout; a failure fails the test with its output."""
    return run_in_folder(pinned_env(name), script, *args, timeout=timeout, name=f"the {name} pins")


def run_in_folder(folder: Path, script: str, *args: str, timeout: int = 600, name: str | None = None) -> str:
    """:func:`run_pinned`'s run with ``folder`` first on the path (``name``: what the failure calls it); its
    stdout."""
    import torch

    name = name or str(folder)
    threads = torch.get_num_threads()
    if _SERVER and (_SERVER[0].threads != threads or _SERVER[0].proc.poll() is not None):
        close_pinned_server()
    if not _SERVER:
        _SERVER.append(_Server(threads))
        atexit.register(close_pinned_server)
    rc, stdout, stderr = _SERVER[0].run(folder, script, args, timeout)
    if rc is None:
        _SERVER.clear()
        pytest.fail(f"{script} under {name} did not end within {timeout} s:\n{stdout[-3000:]}\n"
                    f"{stderr[-6000:]}")
    if rc != 0:
        pytest.fail(f"{script} under {name} failed (rc {rc}):\n{stdout[-3000:]}\n{stderr[-6000:]}")
    return stdout


__all__ = ["PINS", "close_pinned_server", "pinned_env", "run_in_folder", "run_pinned"]
