"""UniPixel's RefCOCO protocol (litelvlm.unipixel.protocol) against the official code.

Official code: PolyU-ChenLab/UniPixel @ 5c8e941 ("Fix sam2 config"). Each transcription below cites its
file and lines; ours is compared with it over many random inputs (odd expressions, image sizes from 1 px to
huge, masks with empty ones) and, where the shared data is present, over real RefCOCO expressions and masks.
"""

from __future__ import annotations

import copy
import json
import math
import random
from collections import deque

import numpy as np
import pytest
import torch
from PIL import Image

from litelvlm.errors import LiteLVLMError
from litelvlm.unipixel import protocol as P


# -- transcriptions ---------------------------------------------------------------------------------
def official_question(query: str, data_type: str = "seg_image") -> str:
    """unipixel/eval/infer_seg.py L96-103 (``sample['type'] == 'query'``)."""
    media = 'image' if 'image' in data_type else 'video'
    query = query.strip('.')
    query = query[0].lower() + query[1:]
    for key in ('the ', 'an ', 'a '):
        if query.startswith(key):
            query = query[len(key):]
    return f'Please segment the {query} in this {media}.'


# dataset/utils.py L26-29
IMAGE_FACTOR, MIN_PIXELS, MAX_PIXELS, MAX_RATIO = 28, 4 * 28 * 28, 16384 * 28 * 28, 200
FRAME_FACTOR = 2                                                                       # dataset/utils.py L33


def round_by_factor(number, factor):  # dataset/utils.py L44-46
    return round(number / factor) * factor


def ceil_by_factor(number, factor):  # dataset/utils.py L49-51
    return math.ceil(number / factor) * factor


def floor_by_factor(number, factor):  # dataset/utils.py L54-56
    return math.floor(number / factor) * factor


def official_smart_resize(height, width, factor=IMAGE_FACTOR, min_pixels=MIN_PIXELS, max_pixels=MAX_PIXELS):
    """dataset/utils.py L59-87."""
    if max(height, width) / min(height, width) > MAX_RATIO:
        raise ValueError(
            f"absolute aspect ratio must be smaller than {MAX_RATIO}, got "
            f"{max(height, width) / min(height, width)}")
    h_bar = max(factor, round_by_factor(height, factor))
    w_bar = max(factor, round_by_factor(width, factor))
    if h_bar * w_bar < min_pixels:
        beta = math.sqrt(min_pixels / (height * width))
        h_bar = ceil_by_factor(height * beta, factor)
        w_bar = ceil_by_factor(width * beta, factor)
    if h_bar * w_bar > max_pixels:
        beta = math.sqrt((height * width) / max_pixels)
        h_bar = floor_by_factor(height / beta, factor)
        w_bar = floor_by_factor(width / beta, factor)
    return h_bar, w_bar


def official_to_rgb(pil_image):  # dataset/utils.py L90-96
    if pil_image.mode == 'RGBA':
        white_background = Image.new("RGB", pil_image.size, (255, 255, 255))
        white_background.paste(pil_image, mask=pil_image.split()[3])
        return white_background
    else:
        return pil_image.convert("RGB")


def official_fetch_image(ele, size_factor=IMAGE_FACTOR):
    """dataset/utils.py L99-147, the ``PIL.Image`` input branch (L105-106) and the resize (L126-145)."""
    image = official_to_rgb(ele["image"])
    width, height = image.size
    min_pixels = ele.get("min_pixels", MIN_PIXELS)
    max_pixels = ele.get("max_pixels", MAX_PIXELS)
    resized_height, resized_width = official_smart_resize(height, width, factor=size_factor,
                                                          min_pixels=min_pixels, max_pixels=max_pixels)
    return image.resize((resized_width, resized_height))


def official_fetch_video_list(ele, image_factor=IMAGE_FACTOR):
    """dataset/utils.py L311-327: a list of frames, with ``return_video_sample_fps=True``."""
    process_info = ele.copy()
    process_info.pop("type", None)
    process_info.pop("video", None)
    images = [official_fetch_image({"image": video_element, **process_info}, size_factor=image_factor)
              for video_element in ele["video"]]
    nframes = ceil_by_factor(len(images), FRAME_FACTOR)
    if len(images) < nframes:
        images.extend([images[-1]] * (nframes - len(images)))
    return images, process_info.pop("fps", 2.0)


def official_messages(paths, question, sample_frames=16):
    """unipixel/eval/infer_seg.py L115-127."""
    return [{
        'role': 'user',
        'content': [{
            'type': 'video',
            'video': paths,
            'min_pixels': 128 * 28 * 28,
            'max_pixels': 256 * 28 * 28 * int(sample_frames / len(paths))
        }, {
            'type': 'text',
            'text': question
        }]
    }]


def official_cc_min_box(pred, min_area=10):
    """infer_seg.py L24-43 ``get_min_box``; ``cv2.connectedComponentsWithStats(connectivity=8)`` written out
    as an 8-neighbour flood fill (the components and their areas are what the function uses)."""
    binary = pred.numpy().astype(bool)
    h, w = binary.shape
    seen = np.zeros_like(binary)
    filtered = np.zeros_like(binary)
    for y0, x0 in zip(*np.nonzero(binary)):
        if seen[y0, x0]:
            continue
        comp, queue = [], deque([(y0, x0)])
        seen[y0, x0] = True
        while queue:
            y, x = queue.popleft()
            comp.append((y, x))
            for dy in (-1, 0, 1):
                for dx in (-1, 0, 1):
                    ny, nx = y + dy, x + dx
                    if 0 <= ny < h and 0 <= nx < w and binary[ny, nx] and not seen[ny, nx]:
                        seen[ny, nx] = True
                        queue.append((ny, nx))
        if len(comp) >= min_area:
            for y, x in comp:
                filtered[y, x] = True
    coords = np.column_stack(np.where(filtered > 0))
    if coords.shape[0] == 0:
        return
    y_min, x_min = coords.min(axis=0)
    y_max, x_max = coords.max(axis=0)
    return torch.Tensor([[x_min, y_min, x_max, y_max]])


def official_bbox_iou(bboxes1, bboxes2):
    """nncore 0.4.7 ``nncore/ops/bbox.py`` ``bbox_iou`` (aligned=False) with
    ``bbox_area``/``bbox_intersection``."""
    area1 = (bboxes1[:, 2] - bboxes1[:, 0]) * (bboxes1[:, 3] - bboxes1[:, 1])
    area2 = (bboxes2[:, 2] - bboxes2[:, 0]) * (bboxes2[:, 3] - bboxes2[:, 1])
    lt = torch.max(bboxes1[:, None, :2], bboxes2[:, :2])
    rb = torch.min(bboxes1[:, None, 2:], bboxes2[:, 2:])
    wh = (rb - lt).clamp(min=0)
    inter = wh[:, :, 0] * wh[:, :, 1]
    return inter / (area1[:, None] + area2 - inter)


def official_score(gt_float, pred_bool, boxes=None):
    """infer_seg.py L239-251 (``masks[0][0]`` is the float mask of process_masks, -1 where ignored)."""
    keep = gt_float != -1
    mask = gt_float.bool()
    pred = pred_bool.bool()
    inter = ((mask * pred) * keep).sum().item()
    union = ((mask + pred) * keep).sum().item()
    iou = 1 if union == 0 else inter / union
    out = dict(inter=inter, union=union, iou=iou)
    if boxes is not None:
        box = official_cc_min_box(pred)
        out['hit'] = False if box is None else official_bbox_iou(box, torch.Tensor(boxes[0])).item() >= 0.5
    return out


def official_summary(preds):
    """unipixel/eval/eval_refcoco.py L29-34."""
    cum_inter = sum(p['inter'] for p in preds)
    cum_union = sum(p['union'] for p in preds)
    ciou = cum_inter / cum_union
    giou = sum(p['iou'] for p in preds) / len(preds)
    box_acc = sum(1 if p.get('hit') else 0 for p in preds) / len(preds)
    return dict(ciou=ciou, giou=giou, box_acc=box_acc, cum_inter=cum_inter, cum_union=cum_union)


def official_seg_rows(input_ids, seg_token_id):
    """unipixel/model/qwen2_5_vl.py L344-346 (batch of one)."""
    shift_inputs = input_ids[None][..., 1:].contiguous()
    return torch.where(shift_inputs[0] == seg_token_id)[0]


OFFICIAL_SEG_RESPONSES = [  # unipixel/dataset/sub_classes/segmentation.py L76-82 (SEG_TOKEN: constants.py L6)
    'The target is <|seg|>.', 'The segmentation result is <|seg|>.',
    'Sure, the segmentation mask is <|seg|>.', 'Sure, it is <|seg|>.', '<|seg|>.']
OFFICIAL_GENERATE = dict(do_sample=False, temperature=None, top_k=None, top_p=None, repetition_penalty=None,
                         max_new_tokens=512)  # infer_seg.py L190-197


# -- 1. the question --------------------------------------------------------------------------------
WORDS = ["dog", "Man", "left", "THE", "a", "an", "the", "guy", "in", "red", "shirt", "É", "apple", "x", "2",
         "", "theater", "another", "ana", ".", "...", "anA"]
PREFIXES = ["", "the ", "The ", "THE ", "a ", "A ", "an ", "An ", "the a ", "the an ", "an a ", "a an ",
            "the the ", "a the ", ".the ", "the", "a", " the ", "thea ", "an", "the  ", "a  "]


def _random_expression(rng: random.Random) -> str:
    words = " ".join(rng.choice(WORDS) for _ in range(rng.randint(0, 5)))
    text = rng.choice(PREFIXES) + words
    return rng.choice(["", ".", "..", " ", ". "]) + text + rng.choice(["", ".", "..", " ", " .", "?"])


def test_question_equals_the_official_on_random_expressions():
    rng, checked = random.Random(0), 0
    for _ in range(5000):
        expr = _random_expression(rng)
        try:
            want = official_question(expr)
        except IndexError:  # nothing left once the dots are stripped: the official crashes
            with pytest.raises(LiteLVLMError):
                P.question(expr)
            continue
        assert P.question(expr) == want, expr
        checked += 1
    assert checked > 4000


@pytest.mark.parametrize("expr,want", [
    ("The man on the left.", "Please segment the man on the left in this image."),
    ("a an dog", "Please segment the an dog in this image."),       # 'an ' was checked before 'a '
    ("an a dog", "Please segment the dog in this image."),
    ("the the dog", "Please segment the the dog in this image."),   # each article once
    ("A", "Please segment the a in this image."),                  # no trailing space: kept
    ("...THE cat...", "Please segment the tHE cat in this image."),  # only the first letter lowered
])
def test_question_examples(expr, want):
    assert P.question(expr) == want == official_question(expr)


def test_question_on_real_refcoco_expressions(shared_data):
    n = 0
    for split in ("val", "testA", "testB"):
        for item in json.loads((shared_data / "refcoco_unc_expressions" / f"{split}.json").read_text())[
            "items"]:
            assert P.question(item["text"]) == official_question(item["text"]), item["text"]
            n += 1
    assert n == 10834 + 5657 + 5095


# -- 2. the visual input ----------------------------------------------------------------------------
def _random_size(rng: np.random.RandomState) -> tuple[int, int]:
    h = int(np.exp(rng.uniform(0, np.log(30000))))
    w = int(max(1, min(30000, h * np.exp(rng.uniform(-np.log(250), np.log(250))))))
    return h, w


def test_smart_resize_equals_the_official_from_tiny_to_huge():
    rng, raised = np.random.RandomState(0), 0
    sizes = [_random_size(rng) for _ in range(20000)] + [(1, 1), (1, 200), (1, 201), (28, 28), (14, 42),
                                                         (42, 70), (317, 317), (100000, 100000)]
    for h, w in sizes:
        try:
            want = official_smart_resize(h, w, 28, 128 * 28 * 28, 256 * 28 * 28 * 16)
        except ValueError:
            with pytest.raises(LiteLVLMError):
                P.resized_size(h, w)
            raised += 1
            continue
        got = P.resized_size(h, w)
        assert got == want, (h, w)
        assert got[0] % 28 == 0 and got[1] % 28 == 0
        assert got[0] * got[1] <= P.max_pixels(1) == 3211264
    assert 0 < raised < len(sizes) // 4


def test_smart_resize_keeps_other_bounds():
    rng = np.random.RandomState(1)
    for _ in range(3000):
        h, w = _random_size(rng)
        lo, hi = sorted(int(v) * 784 for v in rng.randint(1, 20000, size=2))
        try:
            want = official_smart_resize(h, w, 28, lo, hi)
        except ValueError:
            continue
        assert P.smart_resize(h, w, 28, lo, hi) == want


def _random_image(rng: np.random.RandomState, mode: str) -> Image.Image:
    h, w = rng.randint(1, 90), rng.randint(1, 90)
    if rng.rand() < 0.2:
        h, w = rng.randint(300, 700), rng.randint(300, 700)
    bands = {"RGB": 3, "RGBA": 4, "L": 1, "LA": 2}[mode] if mode != "P" else 1
    arr = rng.randint(0, 256, size=(h, w, bands), dtype=np.uint8)
    arr = arr[..., 0] if bands == 1 else arr
    return Image.fromarray(arr).convert(mode)


@pytest.mark.parametrize("mode", ["RGB", "RGBA", "L", "LA", "P"])
def test_frames_equal_process_vision_info(mode):
    """Our frames are, pixel for pixel, what process_vision_info makes of the official message (frames as
    PIL images instead of paths: fetch_image opens a path with Image.open, dataset/utils.py L122-123)."""
    rng = np.random.RandomState(len(mode))
    for _ in range(6):
        image = _random_image(rng, mode)
        question = P.question("the dog")
        msgs = official_messages([image], question)
        frames, fps = official_fetch_video_list(msgs[0]["content"][0])
        ours = P.video_frames(P.resize_frame(image))
        assert len(ours) == len(frames) == 2 and fps == P.VIDEO_FPS == 2.0
        for a, b in zip(ours, frames):
            assert a.mode == b.mode == "RGB" and a.size == b.size
            assert np.array_equal(np.asarray(a), np.asarray(b))
        assert (ours[0].height, ours[0].width) == P.resized_size(image.height, image.width)
        mine = P.chat_messages(question, [image])
        assert json.dumps(mine, default=id) == json.dumps(msgs, default=id)


def test_answers_and_generation_settings_are_the_official_ones():
    assert list(P.SEG_RESPONSES) == OFFICIAL_SEG_RESPONSES
    assert P.GENERATE_KWARGS == OFFICIAL_GENERATE
    assert P.teacher_forced_answer() == OFFICIAL_SEG_RESPONSES[0]
    assert [P.teacher_forced_answer(i) for i in range(5)] == OFFICIAL_SEG_RESPONSES
    drawn = [P.teacher_forced_answer(None, seed=3, key=k) for k in range(200)]
    assert drawn == [P.teacher_forced_answer(None, seed=3, key=k) for k in range(200)]
    assert set(drawn) == set(OFFICIAL_SEG_RESPONSES)
    assert drawn != [P.teacher_forced_answer(None, seed=4, key=k) for k in range(200)]
    with pytest.raises(LiteLVLMError):
        P.teacher_forced_answer(5)


def test_seg_rows_equal_the_official_shift():
    rng = torch.Generator().manual_seed(0)
    for n in [1, 2, 5, 40, 300]:
        for _ in range(20):
            ids = torch.randint(0, 6, (n,), generator=rng)
            assert torch.equal(P.seg_rows(ids, 3), official_seg_rows(ids, 3))


# -- 3. the processor (transformers 5) ----------------------------------------------------------------
@pytest.fixture(scope="module")
def tiny_processor():
    from litelvlm.qwen import load_qwen

    model, processor = load_qwen("qwen2.5-vl-tiny-random:0")
    # train.py L171-174
    processor.tokenizer.add_special_tokens({"additional_special_tokens": list(P.ADDED_TOKENS)})
    return model, processor


def test_prepare_inputs_generate(tiny_processor):
    _, processor = tiny_processor
    image = Image.fromarray(np.random.RandomState(0).randint(0, 256, (480, 640, 3), dtype=np.uint8))
    x = P.prepare_inputs(processor, image, "The man on the left.")
    assert x.resized == (476, 644) == P.resized_size(480, 640) and x.frame_size == (480, 640)
    assert x.text == ("<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n<|im_start|>user\n"
                      "<|vision_start|><|video_pad|><|vision_end|>Please segment the man on the left in this "
                      "image.<|im_end|>\n<|im_start|>assistant\n")
    inputs = x.inputs
    # the tiny processor's max_pixels (112 * 112) would shrink the frame: do_resize=False keeps it (builder.py
    # L23)
    assert inputs["video_grid_thw"].tolist() == [[1, 34, 46]] and "pixel_values" not in inputs
    video_pad = processor.tokenizer.convert_tokens_to_ids("<|video_pad|>")
    assert int((inputs["input_ids"] == video_pad).sum()) == 17 * 23
    assert inputs["pixel_values_videos"].shape == (34 * 46, 3 * 2 * 14 * 14)
    assert inputs["second_per_grid_ts"].tolist() == [1.0]  # 2 / fps 2.0 (processing_qwen2_5_vl.py in 4.53.3)
    assert P.seg_rows(inputs["input_ids"][0], P.seg_token_id(processor.tokenizer)).numel() == 0


def test_prepare_inputs_teacher_forced(tiny_processor):
    _, processor = tiny_processor
    image = Image.fromarray(np.random.RandomState(1).randint(0, 256, (37, 301, 4), dtype=np.uint8))
    seg = P.seg_token_id(processor.tokenizer)
    for response in range(5):
        x = P.prepare_inputs(processor, image, "a dog", answer="teacher-forced", response=response)
        assert x.text.endswith("<|im_start|>assistant\n" + OFFICIAL_SEG_RESPONSES[response])
        ids = x.inputs["input_ids"][0]
        rows = P.seg_rows(ids, seg)
        assert rows.tolist() == official_seg_rows(ids, seg).tolist() and rows.numel() == 1
        assert int(ids[rows[0] + 1]) == seg
    with pytest.raises(LiteLVLMError):
        P.prepare_inputs(processor, image, "a dog", answer="sample")


def test_seg_token_id_needs_the_added_token():
    from litelvlm.qwen.config import get_preset
    from litelvlm.qwen.tokenizer import build_qwen_tokenizer

    tok = build_qwen_tokenizer(get_preset("tiny"))
    with pytest.raises(LiteLVLMError):
        P.seg_token_id(tok)
    tok.add_special_tokens({"additional_special_tokens": list(P.ADDED_TOKENS)})
    assert [tok.convert_tokens_to_ids(t) for t in P.ADDED_TOKENS] == [406, 407, 408]  # appended in this order
    assert P.seg_token_id(tok) == 407


def test_official_generation_settings_run_on_transformers_5(tiny_processor):
    model, processor = tiny_processor
    image = Image.fromarray(np.random.RandomState(2).randint(0, 256, (60, 90, 3), dtype=np.uint8))
    x = P.prepare_inputs(processor, image, "the cat")
    kwargs = dict(P.GENERATE_KWARGS, max_new_tokens=3)
    with torch.no_grad():
        out = model.generate(**x.inputs, **kwargs)
        again = model.generate(**x.inputs, **kwargs)
    assert out.shape[1] > x.inputs["input_ids"].shape[1] and torch.equal(out, again)  # greedy


# -- 4. scoring -------------------------------------------------------------------------------------
def _random_mask(rng: np.random.RandomState, h: int, w: int) -> np.ndarray:
    kind = rng.randint(5)
    if kind == 0:
        return np.zeros((h, w), bool)
    if kind == 1:
        return np.ones((h, w), bool)
    if kind == 2:
        return rng.rand(h, w) < rng.uniform(0.01, 0.2)  # speckle: small components
    m = np.zeros((h, w), bool)
    for _ in range(rng.randint(1, 4)):
        y0, x0 = rng.randint(0, h), rng.randint(0, w)
        m[y0:y0 + rng.randint(1, h + 1), x0:x0 + rng.randint(1, w + 1)] = True
    return m


def test_score_sample_equals_the_official_on_random_masks():
    rng = np.random.RandomState(0)
    ours, theirs = [], []
    for _ in range(400):
        h, w = rng.randint(1, 48), rng.randint(1, 48)
        gt, pred = _random_mask(rng, h, w), _random_mask(rng, h, w)
        x1, y1 = rng.uniform(-5, w), rng.uniform(-5, h)
        box = P.coco_box([x1, y1, rng.uniform(0, w), rng.uniform(0, h)])
        if pred.any() and rng.rand() < 0.5:  # near the prediction's own box: hits and near misses
            ys, xs = np.nonzero(pred)
            box = tuple(float(v) + rng.uniform(-2, 2) for v in (xs.min(), ys.min(), xs.max(), ys.max()))
        s = P.score_sample(torch.from_numpy(pred), gt, box=box)
        o = official_score(torch.from_numpy(gt).float(), torch.from_numpy(pred), boxes=[[list(box)]])
        assert (s.inter, s.union, s.iou, s.hit) == (o["inter"], o["union"], o["iou"], o["hit"])
        ours.append(s)
        theirs.append(o)
    assert sum(s.hit for s in ours) > 10 and sum(s.union == 0 for s in ours) > 5
    want, got = official_summary(theirs), P.summarize(ours)
    assert {k: got[k] for k in want} == want and got["n"] == 400


def test_ignored_pixels_and_failures_count_as_the_official():
    rng = np.random.RandomState(1)
    for _ in range(100):
        h, w = rng.randint(1, 30), rng.randint(1, 30)
        gt, pred, ignore = _random_mask(rng, h, w), _random_mask(rng, h, w), rng.rand(h, w) < 0.3
        label = torch.from_numpy(gt).float()
        # process_masks' -1 for ignored pixels (dataset/utils.py L389, L445)
        label[torch.from_numpy(ignore)] = -1
        o = official_score(label, torch.from_numpy(pred))
        s = P.score_sample(pred, label.numpy() == 1, ignore=ignore)
        assert (s.inter, s.union, s.iou) == (o["inter"], o["union"], o["iou"])
        failed = P.score_sample(None, gt, box=(0, 0, w, h))  # infer_seg.py L219: zeros of frame_size
        o = official_score(torch.from_numpy(gt).float(), torch.zeros(h, w), boxes=[[[0, 0, w, h]]])
        assert (failed.inter, failed.union, failed.iou, failed.hit) == (o["inter"], o["union"], o["iou"],
                                                                        o["hit"])


def test_min_box_equals_the_official_components():
    rng = np.random.RandomState(2)
    for _ in range(300):
        h, w = rng.randint(1, 40), rng.randint(1, 40)
        m = _random_mask(rng, h, w)
        want = official_cc_min_box(torch.from_numpy(m))
        got = P.min_box(m)
        assert (got is None) == (want is None)
        if got is not None:
            assert list(got) == want[0].int().tolist()


def test_min_box_equals_unipixels_get_min_box(official):
    """``get_min_box`` itself (``unipixel/eval/infer_seg.py`` L24-43, read from
    ``../shared/official/UniPixel.git`` and run as it is; the rest of the script needs UniPixel's package):
    the same boxes and the same None."""
    import ast

    import cv2

    source = official.show("UniPixel.git", "unipixel/eval/infer_seg.py").decode()
    fn = next(n for n in ast.parse(source).body if isinstance(n, ast.FunctionDef) and n.name == "get_min_box")
    assert (fn.lineno, fn.end_lineno) == (24, 43)
    namespace = {"np": np, "cv2": cv2, "torch": torch}
    exec(compile(ast.Module(body=[fn], type_ignores=[]), "infer_seg.py", "exec"), namespace)
    rng = np.random.RandomState(3)
    masks = [_random_mask(rng, rng.randint(1, 60), rng.randint(1, 60)) for _ in range(300)]
    masks += [np.zeros((5, 7), bool), np.ones((1, 1), bool), np.ones((2, 5), bool), np.eye(12, dtype=bool),
              np.eye(9, dtype=bool)]   # a diagonal is one 8-connected component: 12 pixels kept, 9 not
    for m in masks:
        want, got = namespace["get_min_box"](torch.from_numpy(m)), P.min_box(m)
        assert (got is None) == (want is None)
        if got is not None:
            assert list(got) == want[0].int().tolist()


def test_box_iou_and_summary_edges():
    assert math.isnan(P.box_iou((1, 1, 1, 1), (2, 2, 2, 2)))  # 0 / 0: never a hit
    assert P.box_iou((0, 0, 2, 2), (1, 1, 3, 3)) == pytest.approx(1 / 7)
    assert P.score_sample(np.zeros((3, 3)), np.zeros((3, 3))).iou == 1.0
    with pytest.raises(LiteLVLMError):
        P.summarize([])
    with pytest.raises(LiteLVLMError):
        P.summarize([P.score_sample(np.zeros((3, 3)), np.zeros((3, 3)))])
    no_box = P.summarize([P.score_sample(np.ones((2, 2)), np.ones((2, 2)))])
    assert no_box["box_acc"] == 0.0 and no_box["ciou"] == no_box["giou"] == 1.0
    with pytest.raises(LiteLVLMError):
        P.score_sample(np.zeros((2, 3)), np.zeros((3, 2)))


# -- 5. real RefCOCO annotations ----------------------------------------------------------------------
def official_rle_mask(seg, height, width):
    """dataset/utils.py L405-426 for one RefCOCO sample: ``masks = [[[seg]]]`` (segmentation.py L1111)."""
    from pycocotools.mask import decode, frPyObjects, merge
    from torchvision.transforms import functional as T

    raw_masks = [[[seg]]] if isinstance(seg[0], list) else [[seg]]
    assert isinstance(seg[0], list)  # polygons (an RLE dict would be iterated by key, L413)
    for raw_obj_masks in raw_masks:
        for i in [0]:
            mask = torch.zeros((height, width))
            for rle in raw_obj_masks[i]:
                rles = frPyObjects(rle, height, width)
                m = torch.from_numpy(decode(merge(rles))).float()
                mask += T.resize(m.unsqueeze(0).unsqueeze(0), (height, width))[0, 0]
            return (mask > 0).float()


def test_real_masks_boxes_and_questions(coco128):
    from litelvlm.data.refer import load_refer

    records = load_refer(coco128, None, split="all")
    assert len(records) > 100
    hits = []
    for rec in records[::3]:
        want = official_rle_mask(copy.deepcopy(rec.segmentation), rec.height, rec.width)
        assert np.array_equal(rec.mask("union"), want.numpy().astype(bool)), rec.ann_id
        x, y, w, h = rec.bbox
        assert P.coco_box(rec.bbox) == (x, y, x + w, y + h)
        assert P.question(rec.sentence) == official_question(rec.sentence)
        s = P.score_sample(want.bool(), rec.mask("union"), box=P.coco_box(rec.bbox))
        assert s.iou == 1.0
        hits.append(s.hit)
    assert np.mean(hits) > 0.9  # the ground truth's own box hits the annotated box
