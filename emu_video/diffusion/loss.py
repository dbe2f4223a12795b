"""The training loss (MSE against the epsilon or v target) and uniform timestep sampling."""

from __future__ import annotations

import torch

__all__ = ["REDUCTIONS", "diffusion_loss", "sample_timesteps"]

REDUCTIONS = ("mean", "sum", "none", "per_sample")


def diffusion_loss(
    model_output: torch.Tensor,
    target: torch.Tensor,
    mask: torch.Tensor | None = None,
    reduction: str = "mean",
) -> torch.Tensor:
    """Mean squared error between the network output and its target.

    The squared error is computed in at least float32 (half-precision outputs are upcast).

    ``mask`` (optional) weights each element: it must broadcast to ``model_output.shape``, e.g.
    ``(B, 1, T, 1, 1)`` with 0 on conditioning frames to leave them out of the loss. With a mask,
    ``"mean"`` divides by the sum of the mask *broadcast to the full shape*, so it is the mean over the
    elements kept; a mask of all zeros gives a loss of 0 (not NaN).

    ``reduction``:
      * ``"mean"``: a scalar, the (masked) mean over all elements;
      * ``"sum"``: a scalar, the (masked) sum;
      * ``"per_sample"``: shape ``(B,)``, the (masked) mean of each sample;
      * ``"none"``: the (masked) squared error, same shape as ``model_output``.
    """
    if reduction not in REDUCTIONS:
        raise ValueError(f"unknown reduction {reduction!r}; expected one of {REDUCTIONS}")
    if model_output.shape != target.shape:
        raise ValueError(
            f"model_output and target shapes differ: {tuple(model_output.shape)} vs {tuple(target.shape)}"
        )
    dtype = torch.promote_types(torch.promote_types(model_output.dtype, target.dtype), torch.float32)
    err = (model_output.to(dtype) - target.to(dtype)).square()

    if mask is None:
        if reduction == "mean":
            return err.mean()
        if reduction == "sum":
            return err.sum()
        if reduction == "per_sample":
            return err.reshape(err.shape[0], -1).mean(dim=1)
        return err

    try:
        weight = torch.broadcast_to(mask.to(device=err.device, dtype=dtype), err.shape)
    except RuntimeError as exc:
        raise ValueError(
            f"mask of shape {tuple(mask.shape)} does not broadcast to the output shape {tuple(err.shape)}"
        ) from exc
    err = err * weight
    if reduction == "none":
        return err
    if reduction == "sum":
        return err.sum()
    if reduction == "mean":
        return err.sum() / weight.sum().clamp(min=torch.finfo(dtype).tiny)
    flat_err = err.reshape(err.shape[0], -1).sum(dim=1)
    flat_w = weight.reshape(weight.shape[0], -1).sum(dim=1)
    return flat_err / flat_w.clamp(min=torch.finfo(dtype).tiny)


def sample_timesteps(
    batch_size: int,
    num_train_timesteps: int,
    generator: torch.Generator | None = None,
    device: torch.device | str | None = None,
) -> torch.Tensor:
    """Draw ``batch_size`` timesteps uniformly from ``{0, ..., num_train_timesteps - 1}`` (LongTensor).

    The draw happens on the generator's device (when one is given) and is then moved to ``device``.
    """
    if batch_size < 0:
        raise ValueError(f"batch_size must be >= 0, got {batch_size}")
    if num_train_timesteps < 1:
        raise ValueError(f"num_train_timesteps must be >= 1, got {num_train_timesteps}")
    draw_device = generator.device if generator is not None else device
    t = torch.randint(
        0, int(num_train_timesteps), (int(batch_size),), generator=generator, device=draw_device, dtype=torch.long
    )
    return t.to(device) if device is not None else t
