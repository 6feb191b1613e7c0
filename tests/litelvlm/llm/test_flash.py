"""``--attn flash`` (``litelvlm.llm.flash``): SDPA held to its FlashAttention backend in the LLM, registered
through transformers' interfaces; refused off CUDA before any model loads (exit 2, nothing written); on CUDA
the LLM runs it and the methods reading attention weights keep the tokens they keep under SDPA."""

from __future__ import annotations

import dataclasses

import pytest
import torch
from transformers import AttentionInterface
from transformers.masking_utils import ALL_MASK_ATTENTION_FUNCTIONS, sdpa_mask

from analysis.common.options.model_args import ATTN_CHOICES, ATTN_HELP, ModelDataArgs, check_attn_device
from analysis.video.options import VideoArgs
from litelvlm.cli import main
from litelvlm.errors import LiteLVLMError
from litelvlm.llm import flash
from litelvlm.lvlm.numerics import (
    ATTN_IMPLEMENTATIONS,
    llm_implementation,
    set_attention,
    tower_implementation,
)


def test_flash_is_registered_under_one_name_the_llm_alone_runs():
    assert ATTN_CHOICES is ATTN_IMPLEMENTATIONS and ATTN_IMPLEMENTATIONS == ("eager", "sdpa", "flash")
    assert llm_implementation("flash") == flash.NAME == flash.register()
    assert AttentionInterface().get_interface(flash.NAME, None) is flash.sdpa_fa_attention
    assert ALL_MASK_ATTENTION_FUNCTIONS[flash.NAME] is sdpa_mask
    # transformers takes any name holding "flash" for flash_attn's and changes its calls for it
    assert "flash" not in flash.NAME
    assert [tower_implementation(a) for a in ATTN_IMPLEMENTATIONS] == ["eager", "sdpa", "sdpa"]
    assert [llm_implementation(a) for a in ("eager", "sdpa")] == ["eager", "sdpa"]


def test_the_option_is_declared_once():
    fields = [{f.name: f for f in dataclasses.fields(cls)}["attn"] for cls in (ModelDataArgs, VideoArgs)]
    assert [f.metadata["help"] for f in fields] == [ATTN_HELP, ATTN_HELP]
    assert [f.metadata["choices"] for f in fields] == [list(ATTN_CHOICES)] * 2 and fields[0].default is None


@pytest.mark.parametrize("device", ["cpu", None, "mps", "cpu:0"])
def test_flash_off_cuda_is_one_line(device):
    expected = f"^--attn flash needs a CUDA device .*--device is {device or 'cpu'}$"
    with pytest.raises(LiteLVLMError, match=expected):
        check_attn_device("flash", device)
    check_attn_device("sdpa", device)
    check_attn_device("flash", "cuda:1")


@pytest.mark.parametrize("argv", [
    ["eval-grounding", "--refer-dir", "REFER"], ["validate", "--refer-dir", "REFER"],
    ["eval-video", "--device", "cpu"]])
def test_flash_on_a_cpu_is_refused_before_anything_is_written(argv, coco128, tmp_path, capsys):
    out = tmp_path / "out"
    argv = [str(coco128) if a == "REFER" else a for a in argv]
    assert main([*argv, "--out", str(out), "--attn", "flash"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--attn flash needs a CUDA device" in err[0] and "--device is cpu" in err[0]
    assert not out.exists()


def test_a_model_off_cuda_and_a_mask_are_refused(tiny_glamm):
    lm = tiny_glamm.language_model
    with pytest.raises(LiteLVLMError, match="needs CUDA; the LLM is on device cpu"):
        set_attention("flash", llm=lm)
    with pytest.raises(ValueError, match="pass llm="):
        set_attention("flash", tiny_glamm.model.sam)
    q = torch.zeros(1, 2, 3, 8)
    with pytest.raises(LiteLVLMError, match="explicit attention mask"):
        flash.sdpa_fa_attention(lm.layers[0].self_attn, q, q, q, torch.ones(1, 1, 3, 3, dtype=torch.bool))
    with pytest.raises(LiteLVLMError, match="float16 or bfloat16 on CUDA"):
        flash.sdpa_fa_attention(lm.layers[0].self_attn, q, q, q, None)
    assert lm.config._attn_implementation == "eager"   # nothing switched


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_flash_runs_the_llm_on_cuda_as_sdpa_does():
    """bfloat16 on CUDA: the LLM on FlashAttention (CLIP and SAM on SDPA), logits within bfloat16 rounding of
    SDPA's, FastV's and SparseVLM's tokens (scored outside the kernel) the same."""
    from litelvlm.glamm import GlammPipeline
    from litelvlm.lvlm.numerics import Numerics
    from tests.fixtures.images import noise_image

    pipe = GlammPipeline.from_model_string("tiny-random:0", device="cuda", dtype=torch.bfloat16,
                                           numerics=Numerics(attn="flash"))
    assert pipe.describe()["llm_attn_implementation"] == flash.NAME
    assert pipe.clip.modules().config.vision_config._attn_implementation == "sdpa"
    prep = pipe.prepare(noise_image(200, 240, seed=1), ["the dog on the left", "a red car"])
    outs = {}
    for attn in ("flash", "sdpa"):
        set_attention(attn, pipe.model.llava, pipe.model.sam, pipe.clip.modules(), llm=pipe.language_model)
        with torch.no_grad():
            final, _ = pipe.run_llm(prep, pipe.visual_tokens(prep))
            kept = [pipe.ground(prep, m, 64).kept_indices for m in ("fastv", "sparsevlm")]
            masks = pipe.ground(prep, "none").mask_logits
        outs[attn] = (pipe.model.llava.lm_head(final).float(), kept, masks.float())
    torch.testing.assert_close(outs["flash"][0], outs["sdpa"][0], rtol=2e-2, atol=2e-2)
    torch.testing.assert_close(outs["flash"][2], outs["sdpa"][2], rtol=2e-2, atol=2e-2)
    assert all(torch.equal(a, b) for a, b in zip(outs["flash"][1], outs["sdpa"][1]))


def test_efficiency_takes_flash_on_cuda_only(tmp_path, capsys):
    """``efficiency --attn`` offers the three kernels; flash off CUDA: one line (exit 2), nothing written."""
    from litelvlm.cli import main

    out = tmp_path / "eff"
    assert main(["efficiency", "--arch", "glamm-tiny", "--attn", "flash", "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert "--attn flash: SDPA's FlashAttention backend runs on CUDA only" in err
    assert not out.exists()
