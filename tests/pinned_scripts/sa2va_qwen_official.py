"""Sa2VA-Qwen3-VL's and Sa2VA-Qwen2.5-VL's official image path up to the ``[SEG]`` state, run under the
official pins (transformers 4.57.0, qwen-vl-utils), on a written folder; run by
``tests/pinned_env.run_pinned``. Imports the official code and the pinned packages only.

bytedance/Sa2VA @9832e1a ``projects/sa2va/hf/models_qwen3vl/modeling_sa2va_qwen.py``: ``__init__`` L40-48
(``Qwen3VLForConditionalGeneration(config)`` as ``model``; ``models_qwen2_5_vl/`` L53:
``Qwen2_5_VLForConditionalGeneration(config)``), ``predict_forward`` L88 (``text.replace('<image>',
'')``), L178-207 (the message, ``apply_chat_template``, ``process_vision_info``, the processor with
``min_pixels``/``max_pixels``), L216-237 (``generate(..., output_hidden_states=True)``; the last entry of the
prompt step's hidden states), ``get_seg_hidden_states`` L255-260. Two substitutions, both this project's
protocol: the teacher-forced answer is appended to the processed text (random weights generate no ``[SEG]``),
so the prompt step is one forward, whose ``hidden_states`` are what ``generate``'s first step returns; and the
tiny preset's ``min_pixels``/``max_pixels`` replace L44-45's (given on the command line).

usage: sa2va_qwen_official.py OFFICIAL_DIR MODEL_DIR CASES.pt OUT.pt MIN_PIXELS MAX_PIXELS ANSWER
(OFFICIAL_DIR: ``models_qwen3vl`` or ``models_qwen2_5_vl``; the model class follows its config's)
"""

import importlib
import sys
import types
from pathlib import Path

import torch
import transformers
from PIL import Image
from qwen_vl_utils import process_vision_info
from safetensors.torch import load_file
from transformers import AutoProcessor, Qwen2_5_VLForConditionalGeneration, Qwen3VLForConditionalGeneration

from results import save  # tests/pinned_scripts/results.py (on the path: run_pinned)


def official(code: Path, module: str):
    pkg = types.ModuleType("sa2va_official")
    pkg.__path__ = [str(code)]
    sys.modules.setdefault("sa2va_official", pkg)
    return importlib.import_module(f"sa2va_official.{module}")


def main(code, folder, cases, out, min_pixels, max_pixels, answer) -> None:
    code, folder = Path(code), Path(folder)
    config = official(code, "configuration_sa2va_chat").Sa2VAChatConfigQwen.from_pretrained(str(folder))
    qwen3 = isinstance(config, transformers.Qwen3VLConfig)
    model = (Qwen3VLForConditionalGeneration if qwen3 else Qwen2_5_VLForConditionalGeneration)(config)
    tensors = load_file(str(folder / "model.safetensors"))
    own = {k[len("model."):]: v for k, v in tensors.items() if k.startswith("model.")}
    model.load_state_dict(own, strict=True)
    model = model.float().eval()
    processor = AutoProcessor.from_pretrained(str(folder))
    seg_id = processor.tokenizer.convert_tokens_to_ids("[SEG]")
    results = []
    for case in torch.load(cases, weights_only=False):
        # an image (L178-190), or a video's first five frames, each an image (L125-136)
        images = [Image.fromarray(f) for f in case["frames"][:5]] if "frames" in case else [
            Image.fromarray(case["image"])]
        text = case["text"].replace("<image>", "")                       # L88
        messages = [{"role": "user", "content": [*({"type": "image", "image": im} for im in images),
                                                 {"type": "text", "text": text}]}]
        processed = processor.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
        image_inputs, video_inputs = process_vision_info(messages)
        inputs = processor(text=[processed + answer], images=image_inputs, videos=video_inputs, padding=True,
                           return_tensors="pt", min_pixels=int(min_pixels), max_pixels=int(max_pixels))
        language = model.model.language_model
        raw: list = []   # the last decoder layer's output, to tell which state 4.57 puts last
        hook = language.layers[-1].register_forward_hook(
            lambda m, a, out, raw=raw: raw.append(out[0] if isinstance(out, tuple) else out))
        with torch.no_grad():
            states = model(**inputs, output_hidden_states=True).hidden_states
            hook.remove()
            last, before = states[-1][0], raw[-1][0]                     # L234-236
            ids = inputs["input_ids"][0]
            rows = ids == seg_id
            results.append({"input_ids": ids, "pixel_values": inputs["pixel_values"],
                            "image_grid_thw": inputs["image_grid_thw"], "seg_state": last[rows],
                            "before_norm": before[rows], "after_norm": language.norm(before)[rows]})
    save(out, results, rope_scaling=config.text_config.rope_scaling, model=type(model).__name__)


if __name__ == "__main__":
    main(*sys.argv[1:])
