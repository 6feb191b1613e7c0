"""A pipeline and its prepared input are read through what the family contract declares: no
``getattr``/``hasattr`` of a constant attribute name on a pipeline or a prepared input anywhere in the
library or the studies (every attribute they read is declared on
:class:`litelvlm.lvlm.family.GroundingPipeline` or :class:`litelvlm.lvlm.prepared.Prepared`, so it is read
plainly), and every family's prepared input extends :class:`~litelvlm.lvlm.prepared.Prepared`. A CLIP
backend (a pipeline's paired CLIP) is read the same way, through what :class:`litelvlm.clip.base.ClipBackend`
declares; a sentence's record is told from a video's expression by its type, not by probing it; a study's
options (``a``) are read as the dataclass of its options declares them, and a family's video runner reads what
:class:`litelvlm.video.runner.VideoRunArgs` declares, which ``eval-video``'s options provide."""

from __future__ import annotations

import ast
import dataclasses
import functools
import importlib
from pathlib import Path

from litelvlm.clip.base import ClipBackend
from litelvlm.lvlm.family import GroundingPipeline
from litelvlm.lvlm.prepared import Prepared
from litelvlm.registry.families import family_names, get_family
from tests.fixtures.sources import modules, parsed

ROOT = Path(__file__).resolve().parents[2]
#: the names a pipeline or a prepared input goes by in the code
HOLDERS = {"pipe", "pipeline", "self.pipe", "prepared", "prep", "given", "run.pipe", "self.pipeline",
           "pipe._clip", "ctx.pipeline", "ctx.prepared", "self.prepared", "run.prepared", "run.pipeline",
           "self._clip"}
#: the names a CLIP backend goes by in the code (a pipeline's paired CLIP, a study's CLIP)
CLIP_HOLDERS = {"clip", "self.clip", "pipe.clip", "paired", "self.backend", "backend"}
#: the names a record (``litelvlm.data.refer.ReferRecord``, ``video.records.VideoExpression``) goes by
RECORD_HOLDERS = {"rec", "record", "recs[0]", "records[0]", "expression", "expr"}
#: the names a run's options go by in the studies and in what they hand the library
OPTION_HOLDERS = {"a", "self.args", "args", "method_args"}
#: where a namespace of any command is read, and why its options cannot be declared in one place
ANY_COMMAND = {
    "litelvlm/cli.py": "the dispatcher reads the namespace of whichever subcommand ran",
    "analysis/common/runs/command.py": "Screen.of reads any command's namespace, or an options dataclass",
    "analysis/figures/command.py": "--list and --write-notebooks are actions of the command line, which "
                                   "FiguresArgs (a run from code) does not have",
}


@functools.cache
def _attribute_calls() -> tuple[tuple[str, str, bool, str], ...]:
    """(holder, function, whether the name is a literal, ``file:line call``) of every getattr/hasattr in the
    library and the studies, walked once for every test here."""
    found = []
    for path in modules("litelvlm", "analysis"):
        for node in ast.walk(parsed(path)):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) \
                    and node.func.id in ("getattr", "hasattr") and len(node.args) >= 2:
                found.append((ast.unparse(node.args[0]), node.func.id, isinstance(node.args[1], ast.Constant),
                              f"{path.relative_to(ROOT)}:{node.lineno} {ast.unparse(node)}"))
    return tuple(found)


def _probes(holders: set[str], any_getattr: bool) -> list[str]:
    """``file:line getattr(holder, 'name')`` of every constant-name getattr/hasattr on a holder
    (``any_getattr``: and every getattr, whatever its name)."""
    return [where for holder, func, literal, where in _attribute_calls()
            if holder in holders and (literal or any_getattr and func == "getattr")]


def test_no_pipeline_or_input_is_probed_for_an_attribute():
    assert _probes(HOLDERS, any_getattr=True) == []


def test_no_clip_backend_is_probed_for_an_attribute():
    assert _probes(CLIP_HOLDERS, any_getattr=False) == []


def test_no_record_is_probed_for_an_attribute():
    assert _probes(RECORD_HOLDERS, any_getattr=False) == []


def test_no_runs_options_are_probed_for_an_attribute():
    found = _probes(OPTION_HOLDERS, any_getattr=False)
    assert [p for p in found if p.split(":")[0] not in ANY_COMMAND] == []
    assert {p.split(":")[0] for p in found} == set(ANY_COMMAND)   # each exception still needed


def test_no_object_probes_itself_for_an_attribute():
    """A lazy cache is declared with its default (``_weights_hash = None``), not probed."""
    mixin = "analysis/common/options/model_args.py"   # the model options of every study: a study's device
    found = _probes({"self"}, any_getattr=False)
    assert [p for p in found if not p.startswith(mixin)] == []
    assert found, "the model options' mixin no longer reads a study's device: drop the exception"


def test_eval_videos_options_give_what_a_video_runner_reads():
    from analysis.video.options import VideoArgs
    from litelvlm.video.runner import VideoRunArgs

    declared = set(VideoRunArgs.__annotations__)
    assert {"model", "device", "dtype", "attn", "positions", "seed"} <= declared
    assert declared <= {f.name for f in dataclasses.fields(VideoArgs)}


def test_a_clip_backend_declares_what_the_library_reads():
    for name in ("model", "backend", "name", "modules"):
        assert name in ClipBackend.__annotations__ or hasattr(ClipBackend, name), name


def test_the_contract_declares_what_the_studies_read():
    for name in ("compiled", "clip", "model", "numerics", "abilities", "layer_dtype_auto"):
        assert hasattr(GroundingPipeline, name), name
    for name in ("sentences", "input_ids", "seed", "answer", "prompt_len", "clip_cache", "selector_inputs"):
        assert name in Prepared.__annotations__ or hasattr(Prepared, name), name


def _pipelines() -> list[type]:
    """Every family's pipeline class (each family and each of its ``*pipeline`` modules imported: a backbone's
    or a video path's pipeline), subclasses included."""
    for name in family_names():
        get_family(name)
    for path in (ROOT / "litelvlm").rglob("*pipeline*.py"):
        importlib.import_module(".".join(path.relative_to(ROOT).with_suffix("").parts))
    found, todo = [], [GroundingPipeline]
    while todo:
        for sub in todo.pop().__subclasses__():
            found.append(sub)
            todo.append(sub)
    return [c for c in found if c.__module__.startswith("litelvlm.")]


def test_every_familys_prepared_input_extends_prepared():
    pipelines = _pipelines()
    assert len(pipelines) >= 8   # GLaMM, VideoGLaMM, UniPixel (image, video), Sa2VA (three backbones), ...
    for pipeline in pipelines:
        assert issubclass(pipeline.prepared_type, Prepared), pipeline
        assert pipeline.prepared_type is not Prepared, f"{pipeline.__name__} declares no prepared_type"
