"""Every CLIP folder layout the pinned transformers loads is accepted: the folders are written here, by
transformers' own ``save_pretrained``. Today's (``CLIPProcessor.save_pretrained`` of transformers 5: the image
processor under ``image_processor`` in ``processor_config.json``) and the hub's older one
(``CLIPImageProcessor.save_pretrained``: ``preprocessor_config.json``), each with the weights in one
``model.safetensors`` or sharded (``model.safetensors.index.json`` and its shards)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch
from PIL import Image

from litelvlm.cli import main
from litelvlm.errors import LiteLVLMError

#: both processor files and both weight layouts by default; the other two pairings under ``-m slow``
LAYOUTS = [("processor_config.json", False),
           pytest.param("processor_config.json", True, marks=pytest.mark.slow),
           pytest.param("preprocessor_config.json", False, marks=pytest.mark.slow),
           ("preprocessor_config.json", True)]


def write_clip(folder: Path, processor_file: str, sharded: bool, seed: int = 0, tokenizer=None) -> Path:
    """A tiny random CLIP written by transformers' ``save_pretrained`` in the layout asked for (``tokenizer``:
    the CLIP tokenizer :func:`clip_tokenizer` loads, else loaded here)."""
    from transformers import CLIPImageProcessor, CLIPModel, CLIPProcessor, CLIPTokenizer

    from litelvlm.clip.random_init import ARCHS, hf_config, write_clip_tokenizer

    a = ARCHS["tiny"]
    torch.manual_seed(seed)
    model = CLIPModel(hf_config(a)).eval()
    model.save_pretrained(folder, **({"max_shard_size": "200KB"} if sharded else {}))
    if tokenizer is None:
        tok_dir = folder.parent / f"{folder.name}-tokenizer"
        write_clip_tokenizer(tok_dir)
        tokenizer = CLIPTokenizer.from_pretrained(tok_dir)
    images = CLIPImageProcessor(size={"shortest_edge": a.image_size},
                                crop_size={"height": a.image_size, "width": a.image_size})
    if processor_file == "processor_config.json":
        CLIPProcessor(image_processor=images, tokenizer=tokenizer).save_pretrained(folder)
    else:
        tokenizer.save_pretrained(folder)
        images.save_pretrained(folder)
    names = {p.name for p in folder.iterdir()}
    assert processor_file in names and ({"processor_config.json", "preprocessor_config.json"}
                                        - {processor_file}
                                        ).isdisjoint(names)
    assert ("model.safetensors.index.json" in names) is sharded and ("model.safetensors"
                                                                     in names) is not sharded
    return folder


@pytest.fixture(scope="module")
def clip_tokenizer(tmp_path_factory):
    """The tiny CLIP's tokenizer (``write_clip_tokenizer``) loaded by ``CLIPTokenizer``, once per module."""
    from transformers import CLIPTokenizer

    from litelvlm.clip.random_init import write_clip_tokenizer

    folder = tmp_path_factory.mktemp("clip-tokenizer")
    write_clip_tokenizer(folder)
    return CLIPTokenizer.from_pretrained(folder)


@pytest.fixture(scope="module")
def todays_folder(clip_tokenizer, tmp_path_factory) -> Path:
    """Today's layout (``processor_config.json``, one ``model.safetensors``), written once per module: a test
    uses a copy (:func:`_copy`)."""
    return write_clip(tmp_path_factory.mktemp("todays") / "clip", "processor_config.json", False,
                      tokenizer=clip_tokenizer)


def _copy(folder: Path, tmp_path: Path) -> Path:
    return Path(shutil.copytree(folder, tmp_path / "clip"))


@pytest.mark.parametrize("processor_file,sharded", LAYOUTS)
def test_every_save_pretrained_layout_loads(processor_file, sharded, tmp_path, clip_tokenizer, request):
    from transformers import CLIPModel

    from litelvlm.clip import load_clip

    if (processor_file, sharded) == ("processor_config.json", False):
        folder = _copy(request.getfixturevalue("todays_folder"), tmp_path)
    else:
        folder = write_clip(tmp_path / "clip", processor_file, sharded, tokenizer=clip_tokenizer)
    clip = load_clip(str(folder), "hf")
    want = CLIPModel.from_pretrained(str(folder)).state_dict()
    assert all(torch.equal(v, want[k]) for k, v in clip.model.state_dict().items())
    assert clip.preprocess([Image.new("RGB", (70, 50), (200, 10, 10))]).shape == (1, 3, 56, 56)


@pytest.mark.slow   # the default representative: test_every_save_pretrained_layout_loads (the same load_clip)
def test_reversal_runs_on_todays_layout(tmp_path):
    """The reported refusal: ``litelvlm reversal`` on a folder of ``CLIPProcessor.save_pretrained``."""
    from litelvlm.data.fixtures import write_tiny_refer

    folder = write_clip(tmp_path / "clip", "processor_config.json", True)
    refer = write_tiny_refer(tmp_path / "r")
    rc = main(["reversal", "--model", str(folder), "--coco-instances", str(refer / "instances.json"),
               "--n-boot", "20", "--cache-dir", str(tmp_path / "cache"), "--out", str(tmp_path / "out")])
    assert rc == 0 and (tmp_path / "out" / "reversal.parquet").is_file()


@pytest.mark.odd_case("model folders", "processor_config.json without its image_processor object, and no "
                      "preprocessor_config.json", "load_clip (reversal, select, every --clip)",
                      "LiteLVLMError naming the folder and the file, before transformers reads it")
@pytest.mark.parametrize("content", [{"processor_class": "CLIPProcessor"}, {"image_processor": [1]}])
def test_a_processor_config_without_image_settings_is_named(content, tmp_path, todays_folder):
    from litelvlm.clip import load_clip

    folder = _copy(todays_folder, tmp_path)
    (folder / "processor_config.json").write_text(json.dumps(content))
    with pytest.raises(LiteLVLMError, match="processor_config.json has no 'image_processor' object"):
        load_clip(str(folder), "hf")
    (folder / "processor_config.json").unlink()
    with pytest.raises(LiteLVLMError, match=r"lacks the image processor file\(s\) preprocessor_config.json "
                                            r"\(or processor_config.json\)"):
        load_clip(str(folder), "hf")


def test_a_qwen_folder_of_todays_processor_layout_is_accepted(tmp_path):
    """A Qwen2.5-VL folder whose processor was written by transformers 5's
    ``Qwen2_5_VLProcessor.save_pretrained`` (``processor_config.json``, ``chat_template.jinja``; no
    ``preprocessor_config.json``) passes the folder check."""
    import shutil

    from litelvlm.models.model_folder import check_model_folder
    from litelvlm.qwen.checkpoint import random_qwen_dir

    src, folder = random_qwen_dir("tiny", 0), tmp_path / "qwen"
    folder.mkdir()
    for name in ("config.json", "tokenizer.json", "tokenizer_config.json"):
        shutil.copy(src / name, folder / name)
    settings = json.loads((src / "preprocessor_config.json").read_text())
    (folder / "processor_config.json").write_text(json.dumps({"image_processor": settings,
                                                              "processor_class": "Qwen2_5_VLProcessor"}))
    assert check_model_folder(folder, "qwen")["model_type"]


@pytest.mark.slow   # loads the model; the default representative above is the same folder check
def test_a_qwen_folder_saved_by_todays_processor_loads(tmp_path):

    from litelvlm.qwen.checkpoint import load_qwen, random_qwen_dir

    src, folder = random_qwen_dir("tiny", 0), tmp_path / "qwen"
    model, processor = load_qwen(str(src))
    processor.save_pretrained(folder)
    model.save_pretrained(folder, max_shard_size="200KB")
    assert not (folder / "preprocessor_config.json").exists() and (folder / "processor_config.json").is_file()
    assert (folder / "model.safetensors.index.json").is_file()
    again, proc = load_qwen(str(folder))
    want = model.state_dict()
    assert all(torch.equal(v, want[k]) for k, v in again.state_dict().items())
    image = Image.new("RGB", (56, 56), (10, 200, 30))
    assert torch.equal(proc.image_processor(images=[image], return_tensors="pt")["pixel_values"],
                       processor.image_processor(images=[image], return_tensors="pt")["pixel_values"])
