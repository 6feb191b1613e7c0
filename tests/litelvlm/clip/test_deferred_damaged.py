"""A damaged saved CLIP description (``<cache>/clip-descriptions/<key>.json``): garbled or truncated JSON, a
field of the wrong type, a record of the wrong schema, a folder or a link in its place, a file that cannot be
read. Each is removed with one warning naming it, the model is loaded and its description written again, and
the next load is deferred again; an absent description stays silent."""

from __future__ import annotations

import errno
import json
import logging
import os
from pathlib import Path

import pytest

from litelvlm.clip import DeferredClip, load_clip
from litelvlm.clip.deferred import read_description, save_description
from tests.fixtures.damage import replaced_by, truncated


def _drop(key: str):
    """A record without ``key`` (``"describe.grid"``: a key of ``describe``)."""
    def change(record: dict) -> None:
        *parents, last = key.split(".")
        node = record
        for p in parents:
            node = node[p]
        del node[last]
    return change


def _set(key: str, value):
    """A record whose ``key`` (``"describe.geometry.crop"``: nested) is ``value``."""
    def change(record: dict) -> None:
        *parents, last = key.split(".")
        node = record
        for p in parents:
            node = node[p]
        node[last] = value
    return change


def _record(change):
    def damage(path: Path) -> None:
        record = json.loads(path.read_text())
        change(record)
        path.write_text(json.dumps(record))
    return damage


def _folder(path: Path) -> None:
    path.unlink()
    (path / "inside").mkdir(parents=True)
    (path / "inside" / "x.json").write_text("{}")


def _link(target: Path):
    def damage(path: Path) -> None:
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(path.read_bytes())   # a good description elsewhere: the link goes, not its target
        path.unlink()
        path.symlink_to(target)
    return damage


def _broken_link(path: Path) -> None:
    path.unlink()
    path.symlink_to(path.parent / "missing.json")


#: damage kind -> (how the file is damaged, what the warning says is wrong)
DAMAGE = {
    "garbled JSON": (replaced_by("{not json"), "not valid JSON"),
    "truncated": (truncated, "not valid JSON"),
    "empty": (replaced_by(""), "not valid JSON"),
    "not UTF-8": (replaced_by(b'{"v": 1, "describe": "\xff"}'), "not valid JSON"),
    "not an object": (replaced_by("[1, 2]"), "not an object"),
    "null": (replaced_by("null"), "not an object"),
    "another version": (_record(_set("v", 0)), "'v' is not 1"),
    "no describe": (_record(_drop("describe")), "'describe' is not an object"),
    "describe not an object": (_record(_set("describe", [4, 4])), "'describe' is not an object"),
    "no grid": (_record(_drop("describe.grid")), "'grid'"),
    "grid of one": (_record(_set("describe.grid", [4])), "'grid'"),
    "grid of strings": (_record(_set("describe.grid", ["4", "4"])), "'grid'"),
    "grid of zero": (_record(_set("describe.grid", [0, 4])), "'grid'"),
    "grid of floats": (_record(_set("describe.grid", [4.0, 4.0])), "'grid'"),
    "no geometry": (_record(_drop("describe.geometry")), "'geometry'"),
    "geometry not an object": (_record(_set("describe.geometry", "shortest")), "'geometry'"),
    "geometry without crop": (_record(_drop("describe.geometry.crop")), "'geometry'"),
    "geometry with an unknown field": (_record(_set("describe.geometry.zoom", 2)), "'geometry'"),
    "geometry crop of strings": (_record(_set("describe.geometry.crop", "4x4")), "'geometry'"),
    "geometry resize a string": (_record(_set("describe.geometry.resize", "64")), "'geometry'"),
    "geometry pad_to_square a string": (_record(_set("describe.geometry.pad_to_square", "no")), "'geometry'"),
    "no weights_hash": (_record(_drop("describe.weights_hash")), "'weights_hash'"),
    "weights_hash a number": (_record(_set("describe.weights_hash", 12)), "'weights_hash'"),
    "no vision_layers": (_record(_drop("vision_layers")), "'vision_layers'"),
    "text_heads a string": (_record(_set("text_heads", "4")), "'text_heads'"),
    "context_length a bool": (_record(_set("context_length", True)), "'context_length'"),
    "context_length negative": (_record(_set("context_length", -77)), "'context_length'"),
    "a folder": (_folder, "a folder"),
    "a broken link": (_broken_link, "a link"),
}


#: the damage kinds a default run also tries through ``load_clip`` (the others with ``-m slow``)
THROUGH_LOAD = ("garbled JSON", "no grid", "geometry with an unknown field", "text_heads a string",
                "a folder", "a link", "unreadable")


def _warnings(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records
            if r.name == "litelvlm.clip.deferred" and r.levelno == logging.WARNING]


def _damage(kind: str, path: Path, tmp_path: Path, monkeypatch) -> str:
    """Damage the description at ``path`` as ``kind`` says; what the warning is to say is wrong."""
    if kind == "a link":
        _link(tmp_path / "elsewhere" / "description.json")(path)
        return "a link"
    if kind == "unreadable":
        path.chmod(0)
        real = Path.read_bytes

        def denied(self):   # what a non-root user meets (root reads every file)
            if self == path and not self.stat().st_mode & 0o444:
                raise PermissionError(errno.EACCES, "Permission denied", str(self))
            return real(self)

        monkeypatch.setattr(Path, "read_bytes", denied)
        return "cannot be read: Permission denied"
    damage, why = DAMAGE[kind]
    damage(path)
    return why


def _warned(caplog, path: Path, why: str) -> None:
    (message,) = _warnings(caplog)
    assert message.startswith(f"the saved CLIP description {path} is damaged (") and why in message, message
    assert message.endswith("): removed, and written again")


@pytest.fixture(scope="module")
def tiny_clip(tiny_hf_clip_dir):
    return load_clip(str(tiny_hf_clip_dir), "hf")


@pytest.mark.odd_case("cache", "a saved CLIP description that is garbled, truncated, empty, not UTF-8, not "
                      "an object, of the wrong schema or types (no grid, a grid of strings, a geometry that "
                      "builds no Geometry, a layer count that is a string, ...), a folder or a link in its "
                      "place, or unreadable", "read_description",
                      "None, the entry removed (a link, not its target), one warning naming the file and "
                      "what is wrong")
@pytest.mark.parametrize("kind", [*DAMAGE, "a link", "unreadable"])
def test_a_damaged_description_reads_as_none_and_is_removed_with_one_warning(kind, tiny_clip, fresh_cache,
                                                                             tmp_path, monkeypatch, caplog):
    path = fresh_cache / "clip-descriptions" / "0123456789abcdef.json"
    save_description(tiny_clip, path)
    with caplog.at_level("WARNING"):
        assert read_description(path) == json.loads(path.read_text())   # intact: read silently
    assert _warnings(caplog) == []
    why = _damage(kind, path, tmp_path, monkeypatch)
    with caplog.at_level("WARNING"):
        assert read_description(path) is None
    _warned(caplog, path, why)
    assert not os.path.lexists(path) and list(path.parent.iterdir()) == []
    if kind == "a link":
        assert (tmp_path / "elsewhere" / "description.json").is_file()


@pytest.mark.odd_case("cache", "a damaged saved CLIP description (garbled, of the wrong schema or types, a "
                      "folder or a link in its place, unreadable; every kind with -m slow)",
                      "load_clip (deferred)",
                      "one warning naming the file; the model loaded (no KeyError or TypeError) and the "
                      "description written again; the next load deferred; an absent one silent")
@pytest.mark.parametrize("kind", [k if k in THROUGH_LOAD else pytest.param(k, marks=pytest.mark.slow)
                                  for k in [*DAMAGE, "a link", "unreadable"]])
def test_a_damaged_description_is_written_again_and_the_next_load_is_deferred(kind, fresh_cache,
                                                                              tiny_hf_clip_dir, tmp_path,
                                                                              monkeypatch, caplog):
    model = str(tiny_hf_clip_dir)
    with caplog.at_level("WARNING"):
        first = load_clip(model, "hf", defer=True)   # absent: silent
    assert not isinstance(first, DeferredClip) and _warnings(caplog) == []
    (path,) = (fresh_cache / "clip-descriptions").iterdir()
    clean = path.read_bytes()
    why = _damage(kind, path, tmp_path, monkeypatch)
    with caplog.at_level("WARNING"):
        clip = load_clip(model, "hf", defer=True)
    assert not isinstance(clip, DeferredClip)   # loaded
    _warned(caplog, path, why)
    assert path.is_file() and not path.is_symlink() and path.read_bytes() == clean
    caplog.clear()
    with caplog.at_level("WARNING"):
        again = load_clip(model, "hf", defer=True)
    assert isinstance(again, DeferredClip) and again.grid == first.grid and _warnings(caplog) == []
    assert again.describe() == json.loads(clean)["describe"]
    assert sorted(p.name for p in (fresh_cache / "clip-descriptions").iterdir()) == [path.name]


def test_a_folder_outside_the_cache_descriptions_is_not_removed(fresh_cache, tmp_path, caplog):
    """``read_description`` removes a folder in a description's place only inside the cache's
    ``clip-descriptions`` folder."""
    path = tmp_path / "mine" / "description.json"
    (path / "keep").mkdir(parents=True)
    with caplog.at_level("WARNING"):
        assert read_description(path) is None
    (message,) = _warnings(caplog)
    assert str(path) in message and "a folder" in message and "not removed" in message
    assert (path / "keep").is_dir()


def test_a_missing_description_is_none_without_a_warning(fresh_cache, caplog):
    with caplog.at_level("WARNING"):
        assert read_description(fresh_cache / "clip-descriptions" / "none.json") is None
    assert _warnings(caplog) == [] and not os.path.lexists(fresh_cache / "clip-descriptions")
