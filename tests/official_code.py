"""Where the tests find the official code of the reproduced systems: ``../shared/official`` from the project's
root (its README lists the repositories and pinned commits). Source trees are read in place; the bare git dirs
there hold ``HEAD``, ``packed-refs`` and the objects but no ``refs/`` folder, which git requires, so they are
read through a small git dir in a temporary folder whose objects are the stored ones
(``objects/info/alternates``). Nothing is ever written under ``../shared``. The ``official`` fixture
(``tests/conftest.py``) hands out one
:class:`OfficialCode`.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"
OFFICIAL = SHARED / "official"
#: the stored repositories: folder -> repository @ commit (``../shared/official/README.md``)
REPOSITORIES = {"LiteLVLM.git": "sejong-rcv/LiteLVLM @5896153",
                "UniPixel.git": "PolyU-ChenLab/UniPixel @5c8e941",
                "VideoGLaMM": "mbzuai-oryx/VideoGLaMM @6b15b1e", "Sa2VA": "bytedance/Sa2VA @9832e1a",
                "davis2017-evaluation": "davisvideochallenge/davis2017-evaluation @ac7c43f",
                "FlowCut": "TungChintao/FlowCut @a2ecd24"}


class OfficialCode:
    """The official repositories under ``root``; git dirs and extracted folders are made under ``scratch``."""

    def __init__(self, root: Path, scratch: Path):
        self.root, self.scratch = Path(root), Path(scratch)
        self._extracted: dict[tuple[str, tuple[str, ...]], Path] = {}

    def _stored(self, name: str) -> Path:
        path = self.root / name
        if not path.exists():
            raise FileNotFoundError(f"{path} is missing: {REPOSITORIES.get(name, name)} is expected there")
        return path

    def tree(self, name: str) -> Path:
        """The folder of a stored source tree (``VideoGLaMM``, ``Sa2VA``, ``davis2017-evaluation``)."""
        return self._stored(name)

    def git_dir(self, name: str) -> Path:
        """A git dir git accepts for the stored bare repository ``name`` (``LiteLVLM.git``,
        ``UniPixel.git``)."""
        stored, made = self._stored(name), self.scratch / name
        if not made.exists():
            (made / "objects" / "info").mkdir(parents=True)
            for sub in ("refs/heads", "refs/tags"):
                (made / sub).mkdir(parents=True)
            for f in ("HEAD", "packed-refs", "shallow"):
                if (stored / f).exists():
                    shutil.copyfile(stored / f, made / f)
            (made / "objects" / "info" / "alternates").write_text(f"{(stored / 'objects').resolve()}\n")
        return made

    def show(self, name: str, path: str) -> bytes:
        """The bytes of ``path`` at HEAD of the stored repository ``name``."""
        return subprocess.run(["git", f"--git-dir={self.git_dir(name)}", "show", f"HEAD:{path}"],
                              capture_output=True, check=True).stdout

    def extract(self, name: str, *paths: str) -> Path:
        """A folder holding ``paths`` (all of HEAD without any) of the stored repository ``name``, made
        once."""
        key = (name, paths)
        if key not in self._extracted:
            out = self.scratch / f"{name.removesuffix('.git')}-src-{len(self._extracted)}"
            out.mkdir(parents=True)
            archive = subprocess.run(["git", f"--git-dir={self.git_dir(name)}", "archive", "HEAD", *paths],
                                     capture_output=True, check=True).stdout
            subprocess.run(["tar", "-x", "-C", str(out)], input=archive, check=True)
            self._extracted[key] = out
        return self._extracted[key]


def open_official(scratch: Path, shared: Path = SHARED) -> OfficialCode:
    """The official code under ``shared / "official"``: skips the test when ``shared`` is absent, fails it
    when ``shared`` is there without the official code (a broken setup, not a reason to skip)."""
    official = shared / "official"
    if not shared.is_dir():
        pytest.skip(f"the official code is read from {official}, and {shared} is absent")
    if not official.is_dir():
        pytest.fail(f"{shared} is here but {official} is not: the comparisons with official code need it")
    return OfficialCode(official, scratch)
