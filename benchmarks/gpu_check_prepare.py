"""The GPU check's one self-contained folder (``benchmarks/gpu_check.sh --prepare``): the project's code, the
part of the shared data its steps read, the entry points that find the studies' commands, and the wheels a
bare GPU image lacks; at most 40 MiB, run with no git from any directory.

    python benchmarks/gpu_check_prepare.py folder DEST --data ../shared/data --images 32 [--wheels DIR]
    python benchmarks/gpu_check_prepare.py check DEST        # refuse a folder it did not write (exit 2)
    python benchmarks/gpu_check_prepare.py dist-info DIR     # the entry points alone (a checkout, no install)

The code is copied by walking the tree (``CODE``: the library, the studies, the benchmarks, the tests and the
files a run reads), leaving out caches, hidden files, the toy model's weights and any file over 1 MiB (named
on screen). The data: the REFER folder's annotation files and only the images the steps read (the first
``--images`` image ids, bench_throughput's prompts, and each split's first, validate's image), and the
GLaMM-RefSeg tokenizer. ``litelvlm-<version>.dist-info`` (``pyproject.toml``'s entry points and scripts) sits
at the folder's top, so with the folder on ``PYTHONPATH`` ``python -m litelvlm.cli validate`` finds the
studies' subcommands without an install. A folder this script did not write (no ``MARKER`` inside) is
refused, never replaced.
"""

from __future__ import annotations

import argparse
import datetime
import re
import shutil
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
#: the project's entries the folder holds (walked); the rest (figures, results, notebooks, docs, ...) stays
CODE = ("litelvlm", "analysis", "benchmarks", "tests", "pyproject.toml", "README.md", "conftest.py")
#: folders never walked into, and the files under these paths (relative to the root) never copied
SKIP_DIRS = {"__pycache__", ".pytest_cache", ".ruff_cache", ".ipynb_checkpoints", ".git"}
SKIP_PATHS = ("litelvlm/toy/weights",)
#: a file larger than this is left out (and named): the GPU steps read no large file of the tree
LARGE = 2**20
#: the shared data the steps read: the REFER folder (its images cut to those read) and GLaMM's tokenizer
REFER, TOKENIZER = "coco128_refer", "glamm_refseg_tokenizer"
#: the file that marks a folder this script wrote (the only kind it replaces)
MARKER = ".gpu-check-folder"
LIMIT_MIB = 40.0


class PrepareError(Exception):
    """A folder that cannot be prepared (the message is one line)."""


def walk(root: Path, entry: str) -> list[Path]:
    """The files of ``root/entry`` the folder copies (paths relative to ``root``), with the files left out for
    their size."""
    top = root / entry
    if top.is_file():
        return [Path(entry)]
    found = []
    for path in sorted(top.rglob("*")):
        rel = path.relative_to(root)
        if (not path.is_file() or any(p in SKIP_DIRS or p.startswith(".") or p.endswith(".egg-info")
                                      for p in rel.parts) or path.suffix == ".pyc"
                or any(rel.as_posix().startswith(s + "/") for s in SKIP_PATHS)):
            continue
        found.append(rel)
    return found


def copy_code(root: Path, dest: Path) -> list[str]:
    """Copy the project's ``CODE`` from ``root`` into ``dest``; return the files left out for their size."""
    large = []
    for entry in CODE:
        if not (root / entry).exists():
            continue
        for rel in walk(root, entry):
            if (root / rel).stat().st_size > LARGE:
                large.append(rel.as_posix())
                continue
            (dest / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(root / rel, dest / rel)
    return large


def refer_images(refer: Path, count: int) -> list[str]:
    """The images of a REFER folder the check reads: those of the first ``count`` image ids (the throughput
    bench's prompts) and each split's first image id (validate's image)."""
    from litelvlm.data.refer import load_refer

    records = load_refer(refer, None, split="all")   # sorted by image id
    names = list(dict.fromkeys(r.image_path.name for r in records))[:count]
    for split in sorted({r.split for r in records}):
        names.append(min((r for r in records if r.split == split), key=lambda r: r.image_id).image_path.name)
    return sorted(set(names))


def copy_data(data: Path, dest: Path, images: int) -> int:
    """Copy the shared data the steps read from ``data`` into ``dest/shared/data``; return the images
    copied."""
    if not (data / REFER / "instances.json").is_file() or not (data / TOKENIZER).is_dir():
        raise PrepareError(f"the shared data is not at {data} ({REFER}/, {TOKENIZER}/; set "
                           "LITELVLM_SHARED_DATA)")
    out = dest / "shared" / "data"
    shutil.copytree(data / TOKENIZER, out / TOKENIZER)
    for path in (data / REFER).iterdir():
        if path.is_file():
            (out / REFER).mkdir(parents=True, exist_ok=True)
            shutil.copy2(path, out / REFER / path.name)
    names = refer_images(data / REFER, images)
    (out / REFER / "images").mkdir(parents=True, exist_ok=True)
    for name in names:
        shutil.copy2(data / REFER / "images" / name, out / REFER / "images" / name)
    return len(names)


def entry_points(pyproject: str) -> str:
    """``entry_points.txt`` of ``pyproject.toml``'s ``[project.scripts]`` and ``[project.entry-points.*]``."""
    out, group = [], None
    for line in pyproject.splitlines():
        head = re.fullmatch(r"\[(.+)\]\s*", line)
        if head:
            name = head.group(1)
            group = "console_scripts" if name == "project.scripts" else (
                name[len("project.entry-points."):].strip('"') if name.startswith("project.entry-points.")
                else None)
            if group:
                out.append(f"\n[{group}]")
        elif group and (kv := re.fullmatch(r'\s*([\w.-]+)\s*=\s*"([^"]+)"\s*', line)):
            out.append(f"{kv.group(1)} = {kv.group(2)}")
    return "\n".join(out).strip() + "\n"


def write_dist_info(root: Path, into: Path) -> Path:
    """``into/litelvlm-<version>.dist-info`` (METADATA, entry_points.txt) from ``root``'s ``pyproject.toml``
    and ``litelvlm/__init__.py``: what ``importlib.metadata`` reads to find the studies' commands."""
    version = re.search(r'__version__ = "([^"]+)"', (root / "litelvlm" / "__init__.py").read_text()).group(1)
    info = into / f"litelvlm-{version}.dist-info"
    info.mkdir(parents=True, exist_ok=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: litelvlm\nVersion: {version}\n")
    (info / "entry_points.txt").write_text(entry_points((root / "pyproject.toml").read_text()))
    return info


def size_mib(folder: Path) -> float:
    """The bytes of every file under ``folder``, in MiB."""
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file()) / 2**20


def check_dest(dest: Path, root: Path = ROOT) -> None:
    """Refuse a destination that is not empty and was not written by this script, or that holds the tree."""
    if dest.exists() and any(dest.iterdir()) and not (dest / MARKER).is_file():
        raise PrepareError(f"{dest}: not a folder --prepare wrote (no {MARKER} in it); name a new or empty "
                           "folder")
    if dest.resolve() in (root, *root.parents) or any(dest.resolve().is_relative_to(root / e) for e in CODE):
        raise PrepareError(f"{dest}: inside the tree it copies; name a folder outside {', '.join(CODE[:4])}")


def prepare(dest: Path, data: Path, images: int, wheels: Path | None, root: Path = ROOT) -> float:
    """Write the folder ``dest`` (built beside it, then renamed into place); return its size in MiB, printed
    with what was left out. Raises :class:`PrepareError` over ``LIMIT_MIB``."""
    check_dest(dest, root)
    part = dest.with_name(dest.name + ".part")
    shutil.rmtree(part, ignore_errors=True)
    part.mkdir(parents=True)
    try:
        large = copy_code(root, part)
        count = copy_data(data, part, images)
        write_dist_info(root, part)
        for whl in sorted(wheels.glob("*.whl")) if wheels else ():
            (part / ".whl").mkdir(exist_ok=True)
            shutil.copy2(whl, part / ".whl" / whl.name)
        (part / MARKER).write_text(f"written by benchmarks/gpu_check.sh --prepare from {root} on "
                                   f"{datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M UTC}\n")
        mib = size_mib(part)
        if mib > LIMIT_MIB:
            raise PrepareError(f"{dest}: {mib:.1f} MiB, over the {LIMIT_MIB:g} MiB limit (nothing written)")
    except BaseException:
        shutil.rmtree(part, ignore_errors=True)
        raise
    shutil.rmtree(dest, ignore_errors=True)
    part.rename(dest)
    wheel_count = len(list((dest / ".whl").glob("*.whl")))
    print(f"prepared {dest}: {mib:.1f} MiB (limit {LIMIT_MIB:g} MiB): the code, {count} images of {REFER}, "
          f"{TOKENIZER}, {wheel_count} wheels" + (f"; left out for their size: {', '.join(large)}" if large
                                                  else ""))
    return mib


def main(argv: list[str]) -> int:
    """``folder DEST ...``, ``check DEST`` or ``dist-info DIR``; a refusal is one line on stderr (exit 2)."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="what", required=True)
    f = sub.add_parser("folder", help="write the self-contained folder")
    f.add_argument("dest", type=Path)
    f.add_argument("--data", type=Path, required=True, help="the shared data folder (../shared/data)")
    f.add_argument("--images", type=int, default=32, help="the REFER images the throughput bench reads")
    f.add_argument("--wheels", type=Path, default=None, help="a folder of wheels to carry (.whl/)")
    c = sub.add_parser("check", help="refuse a destination this script did not write")
    c.add_argument("dest", type=Path)
    d = sub.add_parser("dist-info", help="write litelvlm's dist-info (its entry points) into a folder")
    d.add_argument("dir", type=Path)
    a = p.parse_args(argv)
    try:
        if a.what == "dist-info":
            write_dist_info(ROOT, a.dir)
        elif a.what == "check":
            check_dest(a.dest.absolute())
        else:
            prepare(a.dest.absolute(), a.data, a.images, a.wheels)
    except PrepareError as e:
        print(f"gpu_check.sh --prepare: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    raise SystemExit(main(sys.argv[1:]))
