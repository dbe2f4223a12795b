"""int8 dynamic quantisation of the U-Net's frozen spatial Linear layers, for CPU inference.

`torch.ao.quantization.quantize_dynamic` stores each chosen Linear layer's weight as int8 (one scale per
output channel) and quantises its input per call, so the projection runs as an int8 GEMM (fbgemm on x86).
Only spatial layers are converted: the temporal layers' weights are swapped in place between layouts
(first frame, interpolation), which needs plain float parameters. Convolutions stay in float.
"""

from __future__ import annotations

import warnings

import torch
from torch import nn

from emu_video.errors import UserError
from emu_video.models.naming import is_video_param

QUANTIZE_MODES = ("none", "int8")


def spatial_linear_names(model: nn.Module) -> set[str]:
    """The names of the plain Linear layers outside the temporal layers and the conditioning input."""
    return {name for name, m in model.named_modules()
            if type(m) is nn.Linear and not is_video_param(name + ".weight")}


def quantize_dynamic_int8(model: nn.Module) -> nn.Module:
    """Convert the spatial Linear layers of `model` (float32, CPU) to dynamically quantised int8, in place."""
    if mode_device(model).type != "cpu":
        raise UserError("int8 quantisation runs on the CPU only (use --device cpu, or leave --quantize out)")
    if next(model.parameters()).dtype != torch.float32:
        raise UserError("int8 quantisation starts from float32 weights (leave --dtype at float32)")
    names = spatial_linear_names(model)
    if not names:
        return model
    from torch.ao.quantization import default_dynamic_qconfig, quantize_dynamic

    with warnings.catch_warnings():  # torch.ao.quantization announces its future move to torchao
        warnings.simplefilter("ignore", DeprecationWarning)
        warnings.simplefilter("ignore", FutureWarning)
        warnings.simplefilter("ignore", UserWarning)
        quantize_dynamic(model, {name: default_dynamic_qconfig for name in names}, dtype=torch.qint8, inplace=True)
    return model


def mode_device(model: nn.Module) -> torch.device:
    return next(model.parameters()).device


def apply_quantization(model: nn.Module, mode: str | None) -> nn.Module:
    """`mode`: "none" (or None) leaves `model` as it is; "int8" quantises its spatial Linear layers."""
    if mode in (None, "none"):
        return model
    if mode == "int8":
        return quantize_dynamic_int8(model)
    raise UserError(f"unknown quantisation {mode!r}; choose one of: {', '.join(QUANTIZE_MODES)}")
