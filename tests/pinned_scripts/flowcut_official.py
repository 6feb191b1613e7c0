"""FlowCut's official patched CLIP forwards on transformers 4.37.2's own CLIP modules (TungChintao/FlowCut
@a2ecd24, whose README installs LLaVA's environment: 4.37.2); run by ``tests/pinned_env.run_pinned``. Imports
the pinned packages and the official files only: ``flowcut/modeling_clip_flowcut.py`` (with its
``utils_flowcut.py``) and ``flowcut/clip_encoder.py``, loaded by path from the official folder the case names
(``../shared/official/FlowCut``) as submodules of a package made up here, without its ``__init__.py`` (which
imports LLaVA through ``main.py``).

Applied as ``flowcut/main.py`` applies them: L36-42 (``pad`` images, ``select_feature='patch'``:
``target_tokens = target_num + 1``, ``apply_flowcut_config`` on the ``CLIPVisionModel``), L44-50 (the
forwards of 4.37.2's ``CLIPAttention``, ``CLIPEncoderLayer``, ``CLIPEncoder`` and ``CLIPVisionTransformer``
replaced on the classes; restored when the job ends, as other jobs of the same launch run the stock
classes), L52-54 (LLaVA's ``CLIPVisionTower.forward`` replaced by ``CLIPVisionTower_FlowCut.forward``). The
tower it runs on is LLaVA's ``CLIPVisionTower`` for ``select_layer=-2``, ``select_feature='patch'`` (its
``feature_select``, as vendored by Theia-4869/VisPruner @aefa01a
``llava/model/multimodal_encoder/clip_encoder.py`` L36-43).

Each case: a ``CLIPVisionConfig``'s values, a ``CLIPVisionModel``'s state dict, pixel values, the budgets
(``target_num``) and the official folder; each budget's (features, keep indices) come back.

usage: flowcut_official.py CASES.pt OUT.pt
"""

import importlib
import sys
import types

import torch
from transformers import CLIPVisionConfig, CLIPVisionModel
from transformers.models.clip import modeling_clip

from results import save  # tests/pinned_scripts/results.py (on the path: run_pinned)

PATCHED = {"CLIPAttention": "CLIPAttention_forward", "CLIPEncoderLayer": "CLIPEncoderLayer_forward",
           "CLIPEncoder": "CLIPEncoder_forward", "CLIPVisionTransformer": "CLIPVisionTransformer_forward"}


def official_modules(folder: str):
    """(``modeling_clip_flowcut``, ``clip_encoder``) of the official ``flowcut`` folder."""
    package = types.ModuleType("flowcut")   # made up (no spec): batch.py drops it after the job
    package.__path__ = [folder]
    sys.modules["flowcut"] = package
    return (importlib.import_module("flowcut.modeling_clip_flowcut"),
            importlib.import_module("flowcut.clip_encoder"))


class CLIPVisionTower:
    """LLaVA's ``CLIPVisionTower`` around a loaded ``CLIPVisionModel`` (``select_layer=-2``, ``'patch'``)."""

    select_layer, select_feature = -2, "patch"

    def __init__(self, vision_tower):
        self.vision_tower = vision_tower
        self.device, self.dtype = vision_tower.device, vision_tower.dtype

    def feature_select(self, image_forward_outs):
        image_features = image_forward_outs.hidden_states[self.select_layer]
        if self.select_feature == 'patch':
            image_features = image_features[:, 1:]
        elif self.select_feature == 'cls_patch':
            image_features = image_features
        else:
            raise ValueError(f'Unexpected select feature: {self.select_feature}')
        return image_features


def run_case(case, clip, encoder) -> list:
    model = CLIPVisionModel(CLIPVisionConfig(**case["config"])).eval()
    missing, unexpected = model.load_state_dict(case["state"], strict=False)
    if unexpected or any(not k.endswith("position_ids") for k in missing):
        raise RuntimeError(f"not the same module tree: missing {missing}, unexpected {unexpected}")
    tower = CLIPVisionTower(model)
    out = []
    for target_num in case["budgets"]:
        clip.apply_flowcut_config(model, target_tokens=target_num + 1)   # main.py L39, L42
        feats, keep = encoder.CLIPVisionTower_FlowCut.forward(tower, case["pixels"])
        out.append({"features": feats, "keep": keep})
    return out


def main(cases, out) -> None:
    cases = torch.load(cases, weights_only=False)
    results = []
    if cases:
        clip, encoder = official_modules(cases[0]["folder"])
        stock = {c: getattr(modeling_clip, c).forward for c in PATCHED}
        try:
            for c, f in PATCHED.items():   # main.py L44-50
                getattr(modeling_clip, c).forward = getattr(clip, f)
            results = [run_case(case, clip, encoder) for case in cases]
        finally:
            for c, f in stock.items():
                getattr(modeling_clip, c).forward = f
    save(out, results)


if __name__ == "__main__":
    main(*sys.argv[1:])
