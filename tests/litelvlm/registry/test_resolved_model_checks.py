"""The checks of a model string and its folder are made in one place, the resolution
(:func:`litelvlm.registry.families.resolve`), with one wording for every family: a folder lacking config.json,
weights or a family's architecture, an unknown random preset, a bad seed. Each is one line naming the model
string, exit 2 from a command; each family's checkpoint module raises the resolution's own line (table-driven:
every bad input of every family)."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import pytest

from litelvlm.cli import main
from litelvlm.errors import LiteLVLMError
from litelvlm.qwen.checkpoint import qwen_folder
from litelvlm.registry import families
from litelvlm.sa2va.checkpoint import sa2va_folder
from litelvlm.sa2va.internvl.loading import internvl_folder
from litelvlm.unipixel.checkpoint import unipixel_folder
from litelvlm.videoglamm.checkpoint import videoglamm_folder
from tests.fixtures.cli import one_error_line
from tests.fixtures.model_folders import fake_family_folder

FAMILIES = ("glamm", "unipixel", "videoglamm", "sa2va")


def _preset_name(family: str) -> str:
    return families.card(family).default_model.split(":")[0]


#: each bad input, made for a family in a temporary folder -> the model string
BAD: dict[str, Callable[[Path, str], str]] = {
    "a folder without config.json": lambda tmp, family: str(_weights_only(tmp / family)),
    "a folder without weights": lambda tmp, family: str(
        fake_family_folder(tmp / family, family, weights=False)),
    "a folder of no family's architecture": lambda tmp, family: str(
        fake_family_folder(tmp / family, family, architectures=["NoSuchModelForCausalLM"])),
    "an unknown random preset": lambda tmp, family: _preset_name(family).replace("tiny", "huge") + ":0",
    "a bad seed": lambda tmp, family: _preset_name(family) + ":x",
}


def _weights_only(folder: Path) -> Path:
    folder.mkdir(parents=True)
    (folder / "model.safetensors").write_bytes(b"")
    return folder


def _wording(line: str, model: str) -> str:
    """The line with the model string and what names one family (a did-you-mean hint) taken out."""
    line = line.replace(model, "MODEL").replace(repr(model.split(":")[0]), "NAME")
    return re.sub(r" \(did you mean [^)]*\)", "", line)


@pytest.mark.parametrize("case", list(BAD))
def test_each_bad_model_is_one_line_with_one_wording_for_every_family(case, tmp_path, coco128, capsys):
    """``eval-grounding --model BAD``: exit 2, one line naming the model string, the same words for every
    family."""
    wordings = set()
    for family in FAMILIES:
        model = BAD[case](tmp_path, family)
        rc = main(["eval-grounding", "--refer-dir", str(coco128), "--out", str(tmp_path / "out" / family),
                   "--model", model, "--limit-images", "1"])
        line = one_error_line(rc, capsys.readouterr().err, "eval-grounding")
        assert f"model {model!r}: " in line, line
        wordings.add(_wording(line, model))
    assert len(wordings) == 1, wordings


#: each family's own resolvers in its checkpoint modules (GLaMM's pipeline asks the resolution directly; Sa2VA
#: has one per backbone folder layout) -> (family, resolver)
RESOLVERS: dict[str, tuple[str, Callable[[str], object]]] = {
    "glamm": ("glamm", lambda model: families.family_model(model, families.card("glamm"))),
    "unipixel": ("unipixel", unipixel_folder), "videoglamm": ("videoglamm", videoglamm_folder),
    "sa2va": ("sa2va", sa2va_folder), "sa2va-internvl3": ("sa2va", internvl_folder)}


@pytest.mark.parametrize("resolver", list(RESOLVERS))
@pytest.mark.parametrize("case", list(BAD))
def test_each_familys_checkpoint_module_raises_the_resolutions_line(resolver, case, tmp_path):
    family, own_resolver = RESOLVERS[resolver]
    model = BAD[case](tmp_path, family)
    with pytest.raises(LiteLVLMError) as resolved:
        families.resolve(model)
    with pytest.raises(LiteLVLMError) as own:
        own_resolver(model)
    assert str(own.value) == str(resolved.value) and "\n" not in str(own.value)


@pytest.mark.parametrize("resolver", list(RESOLVERS))
def test_another_familys_folder_is_refused_by_name(resolver, tmp_path):
    """A folder of another family, given to a family's loader: the line names the family it is and the one
    the loader reads, the same words for each."""
    family, own_resolver = RESOLVERS[resolver]
    other = next(f for f in FAMILIES if f != family)
    folder = str(fake_family_folder(tmp_path / other, other))
    with pytest.raises(LiteLVLMError) as e:
        own_resolver(folder)
    card, theirs = families.card(family), families.card(other)
    assert str(e.value) == (f"model {folder!r}: its config.json declares architectures "
                            f"{list(theirs.architectures[:1])} ({theirs.display_name}'s), not "
                            f"{card.display_name}'s ({', '.join(card.architectures)})")


@pytest.mark.parametrize("case", ["a folder without config.json", "a folder without weights",
                                  "an unknown random preset", "a bad seed"])
def test_qwen_folders_are_checked_in_the_same_words(case, tmp_path):
    """Qwen2.5-VL (no family of its own, the backbone of two) is checked by the same functions."""
    model = {"a folder without config.json": lambda: str(_weights_only(tmp_path / "q")),
             "a folder without weights": lambda: str(fake_family_folder(
                 tmp_path / "q", "glamm", weights=False,
                 architectures=["Qwen2_5_VLForConditionalGeneration"])),
             "an unknown random preset": lambda: "qwen2.5-vl-huge-random:0",
             "a bad seed": lambda: "qwen2.5-vl-tiny-random:x"}[case]()
    with pytest.raises(LiteLVLMError) as qwen:
        qwen_folder(model)
    family_model = BAD[case](tmp_path / "family", "sa2va")
    with pytest.raises(LiteLVLMError) as family:
        families.resolve(family_model)
    pattern = re.escape(_wording(str(family.value), family_model)).replace("MODEL", ".*")
    assert re.fullmatch(re.sub(r"\\\(random\\ presets:.*", ".*", pattern), _wording(str(qwen.value), model))
