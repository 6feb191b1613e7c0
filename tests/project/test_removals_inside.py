"""Every place in the code that moves or removes a file proves that its target lies inside the folder it owns:
either it checks the target with :func:`litelvlm.runs.records.inside` (the places whose targets are named by a
file read back, which a user may edit), or its targets are names it made itself, listed in :data:`OWN_NAMES`
with the reason. A new place that moves or removes files fails this test until it does one or the other."""

from __future__ import annotations

import ast
from pathlib import Path

from tests.fixtures.sources import modules, parsed

ROOT = Path(__file__).resolve().parents[2]

#: calls that move or remove files: os.<name>, shutil.<name>, or <path>.<name>() for the path methods
OS_CALLS = {"replace", "rename", "remove", "unlink", "rmdir", "removedirs"}
SHUTIL_CALLS = {"rmtree", "move"}
PATH_CALLS = {"unlink", "rmdir"}
#: calls that prove a target lies inside its folder
CHECKS = {"inside", "_remove_tree"}

#: "file:function" -> why its targets are its own names (no record or user input names them)
OWN_NAMES = {
    "litelvlm/runs/cache.py:_write_aside": "a temporary folder it made beside the cache entry it writes",
    "litelvlm/runs/cache.py:_remove": "a cache entry's folder, moved into a temporary folder it made",
    "litelvlm/runs/cache.py:get": "the entry's path, made from the cache's key and a sanitised item name",
    "litelvlm/clip/deferred.py:_remove": "a saved description, checked to lie in clip-descriptions",
    "litelvlm/clip/deferred.py:load": "a saved description's path, made from the cache's key",
    "litelvlm/clip/random_init.py:write_clip_tokenizer": "a temporary folder it made",
    "litelvlm/runs/folder_lock.py:release": "the lock file of the folder whose lock it holds",
    "litelvlm/runs/io.py:atomic_path": "the temporary file it made",
    "litelvlm/runs/io.py:remove_result": "a result file its run names (removed with the commit of an open "
                                         "run)",
    "litelvlm/qwen/checkpoint.py:_write_tokenizer": "a file of the checkpoint folder it is writing",
    "litelvlm/runs/run_folder.py:__exit__": "the --out folder the run created itself",
    "litelvlm/runs/run_folder.py:_remove_if_empty": "the --out folder the run created itself",
    "litelvlm/toy/train.py:train": "its hidden work folder beside --out",
    "litelvlm/toy/train.py:_save": "a temporary tokenizer folder it made",
    "litelvlm/runs/transaction.py:commit": "the journal's temporary file it made",
    "litelvlm/runs/transaction.py:abort": "its own staging folder",
    "litelvlm/runs/transaction.py:replace": "the one rename every write ends in; its callers check their "
                                            "targets",
    "analysis/demo/compute.py:run_demo": "its temporary work folder",
}


def _moves_or_removes(call: ast.Call) -> bool:
    f = call.func
    if not isinstance(f, ast.Attribute):
        return False
    owner = f.value.id if isinstance(f.value, ast.Name) else None
    if owner == "os":
        return f.attr in OS_CALLS
    if owner == "shutil":
        return f.attr in SHUTIL_CALLS
    return f.attr in PATH_CALLS


def _called(call: ast.Call) -> str | None:
    return call.func.attr if isinstance(call.func, ast.Attribute) else getattr(call.func, "id", None)


def places() -> dict[str, bool]:
    """"file:function" of every function that moves or removes files -> whether it checks with ``inside``."""
    found: dict[str, bool] = {}
    for package in ("litelvlm", "analysis"):
        for path in modules(package):
            tree = parsed(path)
            for fn in ast.walk(tree):
                if not isinstance(fn, (ast.FunctionDef, ast.AsyncFunctionDef)):
                    continue
                calls = [n for n in ast.walk(fn) if isinstance(n, ast.Call)]
                if any(_moves_or_removes(c) for c in calls):
                    key = f"{path.relative_to(ROOT).as_posix()}:{fn.name}"
                    found[key] = found.get(key, False) or any(_called(c) in CHECKS for c in calls)
    return found


def test_every_move_or_removal_checks_its_target_or_removes_its_own_names():
    found = places()
    unproven = sorted(k for k, checked in found.items() if not checked and k not in OWN_NAMES)
    assert not unproven, ("these move or remove files without checking their targets lie inside the folder "
                          f"they own (litelvlm.runs.records.inside), nor are listed in OWN_NAMES: {unproven}")
    assert set(OWN_NAMES) <= set(found), sorted(set(OWN_NAMES) - set(found))   # no stale entry
    assert sum(found.values()) >= 8   # the run machinery's places check (transaction, run folder, parts, ...)
