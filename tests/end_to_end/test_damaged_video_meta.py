"""A video folder whose meta file is damaged (garbled or truncated JSON, not UTF-8, ``videos`` a list, a
video without its frames, a ``null`` test meta of Refer-YouTube-VOS, a folder in the file's place, a file
that cannot be read): ``litelvlm plan`` and ``litelvlm eval-video`` read it the same way
(:func:`litelvlm.video.datasets.split_videos`) and refuse it in one line naming the file, exit 2, before any
model loads, writing nothing."""

from __future__ import annotations

import errno
import json
from pathlib import Path

import pytest

from litelvlm.cli import main
from tests.analysis.video.test_protocols import write_mevis, write_ytvos
from tests.fixtures.damage import replaced_by, truncated

MEVIS_META = Path("valid_u") / "meta_expressions.json"
YTVOS_TEST_META = Path("meta_expressions") / "test" / "meta_expressions.json"


def _videos_a_list(path: Path) -> None:
    path.write_text(json.dumps({"videos": list(json.loads(path.read_text())["videos"].values())}))


def _no_frames(path: Path) -> None:
    meta = json.loads(path.read_text())
    del meta["videos"]["vid0"]["frames"]
    path.write_text(json.dumps(meta))


def _folder(path: Path) -> None:
    path.unlink()
    (path / "inside").mkdir(parents=True)


#: damage kind -> (layout, the damaged file, how it is damaged, what the line says)
KINDS = {
    "garbled JSON": ("mevis", MEVIS_META, replaced_by('{"videos": {not json'), "could not be read"),
    "truncated": ("mevis", MEVIS_META, truncated, "could not be read"),
    "not UTF-8": ("mevis", MEVIS_META, replaced_by(b'{"videos": "\xff"}'), "could not be read"),
    "videos a list": ("mevis", MEVIS_META, _videos_a_list, "has no 'videos' mapping"),
    "a video without frames": ("mevis", MEVIS_META, _no_frames, "video 'vid0' needs a 'frames' list"),
    "a null test meta": ("ref-youtube-vos", YTVOS_TEST_META, replaced_by("null"), "has no 'videos' mapping"),
    "a folder in its place": ("mevis", MEVIS_META, _folder, "is a folder, not a file"),
    "unreadable": ("mevis", MEVIS_META, lambda path: path.chmod(0), "Permission denied"),
}


def _layout(kind: str, data: Path, monkeypatch) -> Path:
    """The layout of ``kind`` under ``data``, damaged; the damaged file."""
    dataset, rel, damage, _ = KINDS[kind]
    (write_mevis if dataset == "mevis" else write_ytvos)(data)
    path = data / rel
    damage(path)
    if kind == "unreadable":   # what a non-root user meets (root reads every file)
        real = Path.read_text

        def denied(self, *args, **kwargs):
            if self == path:
                raise PermissionError(errno.EACCES, "Permission denied", str(self))
            return real(self, *args, **kwargs)

        monkeypatch.setattr(Path, "read_text", denied)
    return path


def _argv(command: str, kind: str, data: Path, out: Path) -> list[str]:
    if command == "plan":
        return ["plan", "--data-dirs", str(data), "--out", str(out), "--tree", str(out.parent / "tree"),
                "--models", "videoglamm-tiny-random:0", "--methods", "litelvlm", "--video-budgets", "81"]
    return ["eval-video", "--model", "videoglamm-tiny-random:0", "--dataset", KINDS[kind][0], "--video-dir",
            str(data), "--methods", "litelvlm", "--budgets", "81", "--out", str(out)]


@pytest.mark.odd_case("video folders", "a damaged meta file: garbled, truncated or not UTF-8 JSON, 'videos' "
                      "a list, a video without frames, a null Refer-YouTube-VOS test meta, a folder in its "
                      "place, unreadable", "plan, eval-video",
                      "one line naming the file, exit 2, no traceback; no model loaded, nothing written")
@pytest.mark.parametrize("kind", list(KINDS))
@pytest.mark.parametrize("command", ["plan", "eval-video"])
def test_a_damaged_video_meta_file_is_one_line_naming_it(command, kind, tmp_path, fresh_cache, monkeypatch,
                                                         capsys):
    path = _layout(kind, tmp_path / "data", monkeypatch)
    before = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*"))
    out = tmp_path / "out"
    assert main(_argv(command, kind, tmp_path / "data", out)) == 2
    err = capsys.readouterr().err
    (line,) = err.strip().splitlines()
    assert line.startswith(f"litelvlm {command}: error: ") and "Traceback" not in err
    assert str(path) in line and KINDS[kind][3] in line, line
    assert not out.exists() and not (tmp_path / "tree").exists()
    assert sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*")) == before   # no model written either
