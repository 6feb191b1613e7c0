"""Qwen2.5-VL's vision tower as the methods read it: its merged-token grid
(:mod:`~litelvlm.qwen_vision.grid`), the tower's blocks run and hooked (:mod:`~litelvlm.qwen_vision.vision`,
:mod:`~litelvlm.qwen_vision.vit_attention`) and the stand-in for CLIP's [CLS] attention
(:mod:`~litelvlm.qwen_vision.cls_stand_in`). It knows no family: the Qwen families' shared base
(:mod:`litelvlm.qwen`) and the methods' Qwen variants (:mod:`litelvlm.methods`) build on it.
"""
