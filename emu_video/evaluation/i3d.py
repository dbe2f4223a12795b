"""Inception-v1 I3D (Carreira & Zisserman 2017), Kinetics-400, laid out so that the public PyTorch state dict
`i3d_pretrained_400.pt` (the one the `cd-fvd` package and TATS use) loads with `load_state_dict(strict=True)`.

Parameter names follow that checkpoint: `Conv3d_1a_7x7.conv3d.weight`, `Mixed_4b.b1b.bn.running_mean`,
`logits.conv3d.bias`, ... Convolutions and max-pools use TensorFlow "SAME" padding computed from the input size
(zero padding, as that port does); batch norm uses PyTorch's eps 1e-5, as that port does.

`forward` returns the 400 Kinetics logits averaged over the remaining time steps: the FVD feature of `cd-fvd`
and StyleGAN-V ("raw features before the softmax").
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

NUM_CLASSES = 400
MIN_FRAMES = 9  # three temporal stride-2 stages and a 2-frame average pool


def _same_padding(size: int, kernel: int, stride: int) -> tuple[int, int]:
    """TensorFlow SAME padding for one dimension: (before, after); the extra pixel goes after."""
    total = max(kernel - (stride if size % stride == 0 else size % stride), 0)
    return total // 2, total - total // 2


def _pad_same(x: torch.Tensor, kernel, stride) -> torch.Tensor:
    t, h, w = x.shape[-3:]
    pt, ph, pw = (_same_padding(s, k, st) for s, k, st in zip((t, h, w), kernel, stride))
    return F.pad(x, (*pw, *ph, *pt))


class Unit3D(nn.Module):
    """Conv3d (no bias) + BatchNorm3d + ReLU, or, for the classifier, a biased 1x1x1 conv alone."""

    def __init__(self, cin: int, cout: int, kernel=(1, 1, 1), stride=(1, 1, 1), classifier: bool = False):
        super().__init__()
        self.kernel, self.stride, self.classifier = tuple(kernel), tuple(stride), classifier
        self.conv3d = nn.Conv3d(cin, cout, self.kernel, self.stride, padding=0, bias=classifier)
        if not classifier:
            self.bn = nn.BatchNorm3d(cout, eps=1e-5, momentum=0.001)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv3d(_pad_same(x, self.kernel, self.stride))
        return x if self.classifier else F.relu(self.bn(x))


class MaxPoolSame(nn.Module):
    def __init__(self, kernel, stride):
        super().__init__()
        self.kernel, self.stride = tuple(kernel), tuple(stride)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.max_pool3d(_pad_same(x, self.kernel, self.stride), self.kernel, self.stride)


class InceptionBlock(nn.Module):
    """Four branches: 1x1 | 1x1 -> 3x3 | 1x1 -> 3x3 | 3x3 max-pool -> 1x1, concatenated on channels."""

    def __init__(self, cin: int, widths: tuple[int, int, int, int, int, int]):
        super().__init__()
        w0, w1a, w1b, w2a, w2b, w3 = widths
        self.b0 = Unit3D(cin, w0)
        self.b1a, self.b1b = Unit3D(cin, w1a), Unit3D(w1a, w1b, (3, 3, 3))
        self.b2a, self.b2b = Unit3D(cin, w2a), Unit3D(w2a, w2b, (3, 3, 3))
        self.b3a, self.b3b = MaxPoolSame((3, 3, 3), (1, 1, 1)), Unit3D(cin, w3)
        self.out_channels = w0 + w1b + w2b + w3

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([self.b0(x), self.b1b(self.b1a(x)), self.b2b(self.b2a(x)), self.b3b(self.b3a(x))], 1)


# (name, kind, arguments) in forward order; Inception widths are (1x1, 3x3-reduce, 3x3, 3x3-reduce, 3x3, pool-proj).
_LAYOUT = (
    ("Conv3d_1a_7x7", "unit", (3, 64, (7, 7, 7), (2, 2, 2))),
    ("MaxPool3d_2a_3x3", "pool", ((1, 3, 3), (1, 2, 2))),
    ("Conv3d_2b_1x1", "unit", (64, 64)),
    ("Conv3d_2c_3x3", "unit", (64, 192, (3, 3, 3))),
    ("MaxPool3d_3a_3x3", "pool", ((1, 3, 3), (1, 2, 2))),
    ("Mixed_3b", "mixed", (192, (64, 96, 128, 16, 32, 32))),
    ("Mixed_3c", "mixed", (256, (128, 128, 192, 32, 96, 64))),
    ("MaxPool3d_4a_3x3", "pool", ((3, 3, 3), (2, 2, 2))),
    ("Mixed_4b", "mixed", (480, (192, 96, 208, 16, 48, 64))),
    ("Mixed_4c", "mixed", (512, (160, 112, 224, 24, 64, 64))),
    ("Mixed_4d", "mixed", (512, (128, 128, 256, 24, 64, 64))),
    ("Mixed_4e", "mixed", (512, (112, 144, 288, 32, 64, 64))),
    ("Mixed_4f", "mixed", (528, (256, 160, 320, 32, 128, 128))),
    ("MaxPool3d_5a_2x2", "pool", ((2, 2, 2), (2, 2, 2))),
    ("Mixed_5b", "mixed", (832, (256, 160, 320, 32, 128, 128))),
    ("Mixed_5c", "mixed", (832, (384, 192, 384, 48, 128, 128))),
)


class InceptionI3d(nn.Module):
    """Input (B, 3, T>=9, 224, 224) in [-1, 1] -> (B, 400) Kinetics logits averaged over time."""

    def __init__(self, num_classes: int = NUM_CLASSES):
        super().__init__()
        for name, kind, args in _LAYOUT:
            module = {"unit": Unit3D, "pool": MaxPoolSame, "mixed": InceptionBlock}[kind](*args)
            self.add_module(name, module)
        self.logits = Unit3D(1024, num_classes, classifier=True)

    def backbone(self, x: torch.Tensor) -> torch.Tensor:
        """(B, 1024, T', 7, 7) before the final pooling."""
        for name, _, _ in _LAYOUT:
            x = getattr(self, name)(x)
        return x

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # 2x7x7 average pool with stride 1 (valid), the 1x1x1 classifier, then the mean over time steps.
        # (pooled in float32: CPU has no bf16 avg_pool3d; a no-op for float32 inputs)
        x = self.backbone(x)
        x = F.avg_pool3d(x.float(), kernel_size=(2, 7, 7), stride=1).to(x.dtype)
        return self.logits(x).mean(dim=(2, 3, 4))
