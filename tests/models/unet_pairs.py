"""Tiny U-Nets with random weights for comparing an optimised path with the reference path (also imported by
the scripts that run Triton kernels in the interpreter's subprocess)."""

import copy

import torch

from emu_video.models import VideoUNet, tiny_config


def random_model(seed=0) -> VideoUNet:
    """Tiny U-Net with every weight random (temporal layers away from identity, conditioning channels on)."""
    torch.manual_seed(seed)
    m = VideoUNet(tiny_config()).eval()
    with torch.no_grad():
        for p in m.parameters():
            p.add_(torch.randn_like(p) * 0.05)
    return m


def reference_pair(seed=0) -> tuple[VideoUNet, VideoUNet]:
    """(model, an equal copy with every fast path off)."""
    fast = random_model(seed)
    return fast, copy.deepcopy(fast).set_fast_paths(False)
