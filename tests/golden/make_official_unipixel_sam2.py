"""Write ``official_unipixel_sam2.json``: the names and shapes of UniPixel's non-Qwen tensors, from its own
code.

Run with a checkout of PolyU-ChenLab/UniPixel @5c8e941 (a clone, or a folder where ``git archive`` of it was
unpacked) in the project's environment; hydra, omegaconf and iopath are not needed (they are stubbed: the
modules this script instantiates never call them)::

    python tests/golden/make_official_unipixel_sam2.py /path/to/UniPixel

UniPixel builds its SAM 2 with hydra from ``sam2/configs/sam2.1_hiera_b+.yaml`` and the overrides
``++model.image_size=768`` and ``++model._target_=sam2.sam2_video_predictor.SAM2VideoPredictor``
(``unipixel/model/qwen2_5_vl.py`` L64-70); :func:`instantiate` does what ``hydra.utils.instantiate`` does for
that file (``_target_`` classes built from the nested values; PyYAML reads ``1e-6`` as a string where
OmegaConf reads a float, hence the conversion). The prompt-encoding modules are built as L78-94 builds
them (``PromptEncoder``, ``PositionEmbedding1DRandom`` from the checkout; the linear layers transcribed),
for the 3B (LLM width 2048) and the 7B (3584), both with the vision merger's 5120 = 1280 x 4 inputs.
``tests/litelvlm/unipixel/test_head.py`` checks the project's key tables against the file, and its SAM 2 path
against this code run on UniPixel's ``sam2`` package extracted from ``../shared/official/UniPixel.git`` (and
that this script, run on it, writes the file unchanged).
"""

from __future__ import annotations

import importlib
import json
import sys
import types
from pathlib import Path

import torch
import yaml

OUT = Path(__file__).with_name("official_unipixel_sam2.json")
#: the model-zoo sizes (config.json of Qwen/Qwen2.5-VL-{3B,7B}-Instruct: hidden_size; vision 1280 x 2 x 2)
LLM_DIMS = {"3b": 2048, "7b": 3584}
MERGER_DIM = 1280 * 4


def stub_missing_modules() -> None:
    """``sam2/__init__.py`` initialises hydra and ``hieradet.py`` imports iopath; neither is used here."""
    hydra = types.ModuleType("hydra")
    hydra.initialize_config_module = lambda *a, **k: None
    global_hydra = types.ModuleType("hydra.core.global_hydra")
    global_hydra.GlobalHydra = type("GlobalHydra", (), {"instance": staticmethod(
        lambda: types.SimpleNamespace(is_initialized=lambda: True))})
    file_io = types.ModuleType("iopath.common.file_io")
    file_io.g_pathmgr = None
    for name, mod in {"hydra": hydra, "hydra.core": types.ModuleType("hydra.core"),
                      "hydra.core.global_hydra": global_hydra, "iopath": types.ModuleType("iopath"),
                      "iopath.common": types.ModuleType("iopath.common"),
                      "iopath.common.file_io": file_io}.items():
        sys.modules.setdefault(name, mod)


def instantiate(node):
    """``hydra.utils.instantiate`` for the SAM 2 config files: nested ``_target_`` dicts become objects."""
    if isinstance(node, dict):
        node = {k: instantiate(v) for k, v in node.items()}
        if "_target_" in node:
            module, _, name = node.pop("_target_").rpartition(".")
            return getattr(importlib.import_module(module), name)(**node)
        return node
    if isinstance(node, list):
        return [instantiate(v) for v in node]
    if isinstance(node, str):
        try:
            return float(node)
        except ValueError:
            return node
    return node


def build_official_sam2(repo: Path, image_size: int = 768, overrides: dict | None = None):
    """UniPixel's SAM 2 at inference (``SAM2VideoPredictor``), from the checkout at ``repo``; ``overrides``:
    {dotted key under ``model``: value} applied to the config (the tests' tiny sizes)."""
    stub_missing_modules()
    if str(repo) not in sys.path:
        sys.path.insert(0, str(repo))
    cfg = yaml.safe_load((repo / "sam2" / "configs" / "sam2.1_hiera_b+.yaml").read_text())["model"]
    cfg["image_size"] = image_size
    cfg["_target_"] = "sam2.sam2_video_predictor.SAM2VideoPredictor"
    for key, value in (overrides or {}).items():
        node = cfg
        *path, last = key.split(".")
        for part in path:
            node = node[part]
        node[last] = value
    return instantiate(cfg)


def official_extras(repo: Path, sam_dim: int, image_size: int, llm_dim: int) -> dict[str, list[int]]:
    """The prompt-encoding modules of ``PixelQwen2_5_VLForConditionalGeneration.__init__`` (L78-94)."""
    stub_missing_modules()
    if str(repo) not in sys.path:
        sys.path.insert(0, str(repo))
    from sam2.modeling.position_encoding import PositionEmbedding1DRandom
    from sam2.modeling.sam.prompt_encoder import PromptEncoder

    nn = torch.nn
    embedding = image_size // 16  # SAM2Base: sam_image_embedding_size = image_size // backbone_stride
    mods = nn.ModuleDict({
        "ref_encoder": PromptEncoder(embed_dim=sam_dim, image_embedding_size=(embedding, embedding),
                                     input_image_size=(image_size, image_size), mask_in_chans=16),
        "ref_proj_single": nn.Linear(sam_dim * 2, sam_dim * 3),
        "ref_proj_double": nn.Linear(sam_dim * 3, sam_dim * 3),
        "ref_proj": nn.Sequential(nn.GELU(), nn.Linear(sam_dim * 6, llm_dim)),
        "tem_pe": PositionEmbedding1DRandom(sam_dim // 2),
        "tem_emb": nn.Embedding(1, sam_dim),
        "tem_proj": nn.Linear(sam_dim, sam_dim * 3),
        "msk_proj": nn
        .Sequential(nn.Linear(MERGER_DIM, MERGER_DIM), nn.GELU(), nn.Linear(MERGER_DIM, llm_dim)),
    })
    return {k: list(v.shape) for k, v in mods.state_dict().items()}


def _dumps(obj: dict) -> str:
    """JSON with one tensor per line."""
    lines = []
    for key, value in obj.items():
        if isinstance(value, dict):
            body = ",\n".join(f"  {json.dumps(k)}: {json.dumps(v)}" for k, v in value.items())
            lines.append(f" {json.dumps(key)}: {{\n{body}\n }}")
        else:
            lines.append(f" {json.dumps(key)}: {json.dumps(value)}")
    return "{\n" + ",\n".join(lines) + "\n}\n"


def main(repo: Path) -> None:
    sam2 = build_official_sam2(repo)
    out = {"source": "PolyU-ChenLab/UniPixel @5c8e941, sam2/configs/sam2.1_hiera_b+.yaml at image_size 768",
           "sam2": {k: list(v.shape) for k, v in sam2.state_dict().items()},
           "sam2_parameters": sum(p.numel() for p in sam2.parameters())}
    for name, llm in LLM_DIMS.items():
        out[f"extras_{name}"] = official_extras(repo, sam2.hidden_dim, 768, llm)
    OUT.write_text(_dumps(out))
    print(f"wrote {OUT}: {len(out['sam2'])} sam2 tensors, {out['sam2_parameters']} parameters")


if __name__ == "__main__":
    main(Path(sys.argv[1]).resolve())
