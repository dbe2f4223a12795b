"""The diffusion stages: text-to-image (spatial weights), image-to-video F and interpolation I (temporal
weights and the conditioning input channels; the spatial weights stay frozen)."""

from __future__ import annotations

from pathlib import Path

import torch
from safetensors.torch import save_file

from emu_video.diffusion import (
    ConditionDropout,
    add_noise,
    apply_image_dropout,
    apply_text_dropout,
    diffusion_loss,
    training_target,
)
from emu_video.diffusion.conditioning import (
    first_frame_condition,
    interpolation_condition,
    interpolation_positions,
    positions_slice,
    unet_input,
)
from emu_video.models import VideoUNet
from emu_video.pipelines.components import INTERPOLATION_WEIGHTS
from emu_video.training.export import base_index, finish_index, staged_folder
from emu_video.training.inputs import DiffusionInputs
from emu_video.training.model_setup import ModelSource, load_unet
from emu_video.training.profiling import phase
from emu_video.training.tasks import Task
from emu_video.training.train_state import SampleRandom


class DiffusionTask(Task):
    use_temporal = True
    schedule_slot = "video_schedule"

    def __init__(self, cfg, device, autocast_dtype, src: ModelSource, inputs: DiffusionInputs):
        super().__init__(cfg, device, autocast_dtype)
        self.src, self.inputs = src, inputs
        self.core = unet = load_unet(cfg, src)
        self.select_trainable(unet)
        unet.enable_gradient_checkpointing(cfg.train.gradient_checkpointing)
        if cfg.train.compile != "none":
            # Static shapes: each block shape gets its own compiled code, as in inference. Regions share one
            # code object, so dynamo's default would turn a level's second shape into a dynamic-shape
            # compile: slower kernels, and symbolic strides that inductor cannot order in channels-last.
            unet.set_compile(cfg.train.compile, dynamic=False, backend=cfg.train.compile_backend,
                             memory_budget=cfg.train.compile_memory_budget or None)
            if inputs.vae is not None:  # the live VAE encoder: a large share of a step at 256px and up
                inputs.vae.set_compile(backend=cfg.train.compile_backend)
        unet.train()
        self.schedule = cfg.noise_schedule()
        self.alphas = self.schedule.alphas_cumprod.to(device)
        d = cfg.dropout
        self.dropout = ConditionDropout(d.p_text, d.p_image, d.p_both)

    def select_trainable(self, unet: VideoUNet) -> None:
        unet.freeze_spatial()

    def shard_units(self):
        u = self.core
        return [*u.down_blocks, u.mid_block, *u.up_blocks]

    def model_input(self, x0: torch.Tensor, xt: torch.Tensor, drawn: dict) -> torch.Tensor:
        """The U-Net's input for noisy latents `xt` of clean latents `x0` (`drawn`: this step's draws)."""
        raise NotImplementedError

    def to_channels_last(self) -> None:
        self.core.to_channels_last(True)
        if self.inputs.vae is not None and self.inputs.vae.compiled:  # eager GroupNorm would copy to NCHW
            self.inputs.vae.to_channels_last(True)

    def condition_draws(self, x0: torch.Tensor, rng: SampleRandom) -> dict[str, torch.Tensor]:
        """Random draws of the conditioning input beyond the dropout flag (none here)."""
        return {}

    def draw(self, batch: dict, rng: SampleRandom) -> dict:
        with phase("encode"):  # latents and text states (VAE and text encoders, unless precomputed)
            x0, contexts = self.inputs(batch)
        noise = self.randn(x0.shape, rng)
        t = rng.randint(0, self.schedule.num_train_timesteps).to(self.device)
        drop_text, drop_image = self.dropout.flags(rng.rand())
        return {"x0": x0, "contexts": list(contexts), "noise": noise, "t": t, "drop_text": drop_text.to(self.device),
                "drop_image": drop_image.to(self.device), **self.condition_draws(x0, rng)}

    def loss_from(self, d: dict) -> torch.Tensor:
        x0, noise, t = d["x0"], d["noise"], d["t"]
        xt = add_noise(x0, noise, t, self.alphas)
        contexts = apply_text_dropout(d["contexts"], self.inputs.null(), d["drop_text"])
        sample = self.model_input(x0, xt, d)
        with self.autocast(), phase("unet_forward"):
            out = self.net(sample, t, contexts, use_temporal=self.use_temporal)
        return diffusion_loss(out.float(), training_target(x0, noise, t, self.schedule, self.alphas))

    # Model folder -------------------------------------------------------------------------------------------
    def index_updates(self, index) -> None:
        setattr(index, self.schedule_slot, self.schedule.to_dict())
        res = self.cfg.data.resolution
        index.defaults = {**index.defaults, "height": res, "width": res}

    def export(self, model_dir: Path, weights: dict[str, torch.Tensor]) -> None:
        with staged_folder(model_dir) as dst:
            index = base_index(self.src, dst, keep_unet=False)
            unet = load_unet(self.cfg, self.src)
            own = unet.state_dict()
            with torch.no_grad():
                for name, w in weights.items():
                    own[name].copy_(w)
            unet.save_pretrained(dst / index.unet, self.cfg.export_dtype)
            self.index_updates(index)
            finish_index(dst, index, f"{self.cfg.stage.name or self.cfg.stage.kind} stage")

    def sample(self, model_dir: Path, out_stem: Path, prompts: list[str], steps: int, seed: int) -> list[Path]:
        from emu_video.io.video import write_video
        from emu_video.pipelines import TextToVideoPipeline

        pipe = TextToVideoPipeline.from_pretrained(model_dir, device=self.device)
        paths = []
        for k, prompt in enumerate(prompts):
            out = pipe(prompt, seed=seed + k, num_inference_steps=steps, interpolation_steps=steps, progress=False)
            paths.append(write_video(out_stem.with_name(f"{out_stem.name}-{k}.mp4"), out.frames, out.fps))
        return paths


class TextToImageTask(DiffusionTask):
    """The spatial weights on images (temporal layers off); text dropout only."""

    use_temporal = False
    schedule_slot = "image_schedule"

    def __init__(self, cfg, device, autocast_dtype, src, inputs):
        super().__init__(cfg, device, autocast_dtype, src, inputs)
        self.dropout = ConditionDropout(cfg.dropout.p_text, 0.0, 0.0)

    def select_trainable(self, unet: VideoUNet) -> None:
        for _, p in unet.spatial_named_parameters():
            p.requires_grad_(True)
        for _, p in unet.video_named_parameters():
            p.requires_grad_(False)

    def model_input(self, x0, xt, drawn):
        return xt

    def sample(self, model_dir: Path, out_stem: Path, prompts: list[str], steps: int, seed: int) -> list[Path]:
        from emu_video.io.video import write_image
        from emu_video.pipelines import TextToImagePipeline

        pipe = TextToImagePipeline.from_pretrained(model_dir, device=self.device)
        return [write_image(out_stem.with_name(f"{out_stem.name}-{k}.png"),
                            pipe(p, seed=seed + k, num_inference_steps=steps, progress=False).image)
                for k, p in enumerate(prompts)]


class VideoTask(DiffusionTask):
    """Image-to-video F: the clip's first frame (latent) is the explicit image condition."""

    def model_input(self, x0, xt, drawn):
        cond, mask = first_frame_condition(x0[:, :, 0], x0.shape[2])
        cond, mask = apply_image_dropout(cond, mask, drawn["drop_image"])
        return unet_input(xt, cond, mask)

    def index_updates(self, index) -> None:
        super().index_updates(index)
        index.defaults = {**index.defaults, "num_frames": self.cfg.data.num_frames, "fps": float(self.cfg.data.fps)}


class InterpolationTask(DiffusionTask):
    """Interpolation I: every `factor`-th frame (noise-augmented) is known, the frames between are generated."""

    schedule_slot = "interpolation_schedule"

    def _known(self, x0: torch.Tensor) -> torch.Tensor:
        """The input frames: a strided slice (an index list would be a host-to-device copy in every step)."""
        i = self.cfg.interpolation
        positions = interpolation_positions(i.input_frames, i.factor, i.pad)
        strided = positions_slice(positions)
        return x0[:, :, strided if strided is not None else positions]

    def condition_draws(self, x0, rng):
        """The noise augmentation of the known frames: a level per sample and its noise."""
        i = self.cfg.interpolation
        return {"t_aug": rng.randint(0, i.noise_aug_max + 1).to(self.device),
                "aug_noise": self.randn((*x0.shape[:2], i.input_frames, *x0.shape[3:]), rng)}

    def model_input(self, x0, xt, drawn):
        i = self.cfg.interpolation
        known = add_noise(self._known(x0), drawn["aug_noise"], drawn["t_aug"], self.alphas)
        cond, mask = interpolation_condition(known, i.factor, i.pad)
        cond, mask = apply_image_dropout(cond, mask, drawn["drop_image"])
        return unet_input(xt, cond, mask)

    def index_updates(self, index) -> None:
        setattr(index, self.schedule_slot, self.schedule.to_dict())

    def export(self, model_dir: Path, weights: dict[str, torch.Tensor]) -> None:
        with staged_folder(model_dir) as dst:
            index = base_index(self.src, dst, keep_unet=True)
            index.interpolation = INTERPOLATION_WEIGHTS
            path = dst / INTERPOLATION_WEIGHTS
            path.parent.mkdir(parents=True, exist_ok=True)
            if path.exists():
                path.unlink()  # a hard link to the previous model's file: never write through it
            dtype = self.cfg.export_dtype
            save_file({k: v.detach().to(dtype).contiguous().cpu() for k, v in weights.items()}, str(path),
                      metadata={"format": "pt", "content": "emu-video temporal weights"})
            self.index_updates(index)
            finish_index(dst, index, f"{self.cfg.stage.name or 'interpolation'} stage")


TASKS = {"text_to_image": TextToImageTask, "video": VideoTask, "interpolation": InterpolationTask}
