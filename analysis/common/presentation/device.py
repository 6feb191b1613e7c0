"""The device a run measured on, in words (the reports of ``efficiency`` and ``validate``)."""

from __future__ import annotations

import platform

import torch


def device_name(device) -> str:
    """The device in words (GPU name; CPU model and torch threads)."""
    device = torch.device(device)
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return f"CPU ({platform.processor() or platform.machine()}, {torch.get_num_threads()} threads)"
