"""UniPixel's RefCOCO inputs and the LLM's ``[SEG]`` state under UniPixel's pinned transformers (4.53.3), on a
written folder; run by ``tests/pinned_env.run_pinned``. Imports the pinned packages only.

PolyU-ChenLab/UniPixel @5c8e941: ``unipixel/model/builder.py`` L23 (``AutoProcessor.from_pretrained(...,
use_fast=True, do_resize=False)``), ``unipixel/eval/infer_seg.py`` L129-133 (``apply_chat_template``, the
processor on the frames with ``process_vision_info``'s ``fps``), ``unipixel/model/qwen2_5_vl.py`` L21-22 and
L52 (``cache_state_hook`` on ``language_model.norm``: the final norm's input is the state ``seg_head`` reads).
The frames are made by the test from the official ``fetch_video`` transcription
(``tests/litelvlm/unipixel/test_protocol.py``) and handed over as arrays; the LLM is transformers'
``Qwen2_5_VLForConditionalGeneration`` of the pin, which UniPixel's
``PixelQwen2_5_VLForConditionalGeneration`` subclasses, loaded from the folder (its UniPixel-only tensors
left out). The teacher-forced answer after the prompt is this project's protocol.

usage: unipixel_official.py MODEL_DIR CASES.pt OUT.pt
"""

import json
import sys
from pathlib import Path

import torch
from PIL import Image
from transformers import AutoProcessor, Qwen2_5_VLConfig, Qwen2_5_VLForConditionalGeneration

from results import save  # tests/pinned_scripts/results.py (on the path: run_pinned)


def main(folder, cases, out) -> None:
    folder = Path(folder)
    raw = json.loads((folder / "config.json").read_text())
    raw.update(model_type="qwen2_5_vl", architectures=["Qwen2_5_VLForConditionalGeneration"])
    config = Qwen2_5_VLConfig.from_dict(raw)
    model, info = Qwen2_5_VLForConditionalGeneration.from_pretrained(
        str(folder), config=config, torch_dtype=torch.float32, output_loading_info=True)
    model.eval()
    processor = AutoProcessor.from_pretrained(str(folder), use_fast=True, do_resize=False)   # builder.py L23
    norm_inputs: list = []
    model.model.language_model.norm.register_forward_pre_hook(lambda m, a: norm_inputs.append(a[0]))
    results = []
    for case in torch.load(cases, weights_only=False):
        frames = [Image.fromarray(f) for f in case["frames"]]
        messages = [{"role": "user", "content": [{"type": "video", "video": frames, **case["pixels"]},
                                                 {"type": "text", "text": case["question"]}]}]
        text = processor.apply_chat_template(messages, add_generation_prompt=True)           # L129
        data = processor(text=[text + case["answer"]], images=None, videos=[frames], return_tensors="pt",
                         fps=[case["fps"]])                                                # L133
        norm_inputs.clear()
        with torch.no_grad():
            model(**data)
        results.append({"text": text, "input_ids": data["input_ids"][0],
                        "pixel_values_videos": data["pixel_values_videos"],
                        "video_grid_thw": data["video_grid_thw"],
                        "second_per_grid_ts": data["second_per_grid_ts"], "norm_input": norm_inputs[-1][0]})
    save(out, results, missing_keys=info["missing_keys"])


if __name__ == "__main__":
    main(*sys.argv[1:])
