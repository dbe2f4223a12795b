"""The diffusion stages: text-to-image (spatial weights), and one task for every conditioning layout (image-to-
video F, interpolation I, extension, direct, keyframes: temporal weights and the conditioning input channels;
the spatial weights stay frozen), or instead LoRA adapters on either (model.lora_rank). What differs between
layouts lives in the layout object."""

from __future__ import annotations

from pathlib import Path

import torch
from safetensors.torch import save_file

from emu_video.diffusion import (
    ConditionDropout,
    add_noise,
    apply_text_dropout,
    diffusion_loss,
    training_target,
)
from emu_video.models import VideoUNet, is_video_param
from emu_video.models.lora import (
    LAYOUT_KEY,
    TARGETS_KEY,
    Adapter,
    adapter_tensors,
    add_adapter,
    lora_config,
    merge_adapters,
)
from emu_video.models.naming import is_clause_param
from emu_video.pipelines.model_index import PRIMARY_LAYOUT, layout_weights_file
from emu_video.training.export import base_index, finish_index, staged_folder
from emu_video.training.inputs import DiffusionInputs
from emu_video.training.model_setup import ModelSource, load_unet
from emu_video.training.profiling import phase
from emu_video.training.tasks import Task
from emu_video.training.train_state import SampleRandom


class DiffusionTask(Task):
    """What every diffusion stage shares: the U-Net, its noise schedule, condition dropout, the loss."""

    use_temporal = True

    def __init__(self, cfg, device, autocast_dtype, src: ModelSource, inputs: DiffusionInputs):
        super().__init__(cfg, device, autocast_dtype)
        self.src, self.inputs = src, inputs
        self.core = unet = load_unet(cfg, src)
        self.lora = None  # the LoraConfig of the adapters this stage trains instead of its weights (model.lora_rank)
        if cfg.model.lora_rank:
            m = cfg.model
            self.lora = lora_config(unet, m.lora_rank, m.lora_alpha, m.lora_target_layers(cfg.stage.kind))
            with torch.random.fork_rng(devices=[]):  # the adapters' random start is the same in every run
                torch.manual_seed(cfg.train.seed)
                add_adapter(unet, self.lora)
        else:
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

    def index_updates(self, index) -> None:
        """Record in the model folder's index what this stage trained (its schedule, defaults)."""
        raise NotImplementedError

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

    # LoRA --------------------------------------------------------------------------------------------------
    def adapter(self, weights: dict[str, torch.Tensor]) -> Adapter:
        """The trained adapter (`weights`: its parameters by name, e.g. the EMA) with what it adapts."""
        layout = self.cfg.conditioning_layout()
        return Adapter(self.lora, adapter_tensors(self.core, weights),
                       {LAYOUT_KEY: layout.name if layout is not None else "",
                        TARGETS_KEY: self.cfg.model.lora_target_layers(self.cfg.stage.kind)})

    def save_adapter(self, folder: Path, weights: dict[str, torch.Tensor]) -> Path | None:
        if self.lora is None:
            return None
        with staged_folder(folder) as dst:
            self.adapter(weights).save(dst)
        return folder

    def merged_weights(self, weights: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Every U-Net weight with the adapter (`weights`) merged into the weights the stage started from."""
        unet = merge_adapters(load_unet(self.cfg, self.src), [(self.adapter(weights), 1.0)])
        return unet.state_dict()

    # Model folder -------------------------------------------------------------------------------------------
    def export(self, model_dir: Path, weights: dict[str, torch.Tensor]) -> None:
        """A model folder whose U-Net holds `weights` (the other parts come from the model the stage began with);
        with LoRA, `weights` are the adapter's, merged first."""
        if self.lora is not None:
            weights = self.merged_weights(weights)
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


class TextToImageTask(DiffusionTask):
    """The spatial weights on images (temporal layers off); text dropout only."""

    use_temporal = False

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

    def index_updates(self, index) -> None:
        index.image_schedule = self.schedule.to_dict()
        res = self.cfg.data.resolution
        index.defaults = {**index.defaults, "height": res, "width": res}

    def sample(self, model_dir: Path, out_stem: Path, prompts: list[str], steps: int, seed: int) -> list[Path]:
        from emu_video.io.video import write_image
        from emu_video.pipelines import TextToImagePipeline

        pipe = TextToImagePipeline.from_pretrained(model_dir, device=self.device)
        return [write_image(out_stem.with_name(f"{out_stem.name}-{k}.png"),
                            pipe(p, seed=seed + k, num_inference_steps=steps, progress=False).image)
                for k, p in enumerate(prompts)]


class LayoutTask(DiffusionTask):
    """The temporal weights for one conditioning layout (`cfg.conditioning_layout()`): the layout says which
    frames of a clip are known, how they are noise-augmented and placed; this task trains on that input.

    The first_frame layout (F) writes the whole U-Net (its temporal layers are the folder's primary ones);
    every other layout writes its temporal weights to LAYOUT/temporal.safetensors next to them, and its
    entry (schedule, options) to model_index.json.
    """

    def __init__(self, cfg, device, autocast_dtype, src, inputs):
        super().__init__(cfg, device, autocast_dtype, src, inputs)
        self.layout = cfg.conditioning_layout()

    def select_trainable(self, unet: VideoUNet) -> None:
        unet.freeze_spatial(frozen=not self.cfg.model.train_spatial)
        if not self.cfg.model.train_clause_attention:
            for name, p in unet.video_named_parameters():
                if is_clause_param(name):
                    p.requires_grad_(False)

    @property
    def fill_from(self) -> str | None:
        """The layout whose weights fill in what this stage's file leaves out (frozen clause attention)."""
        if self.cfg.model.train_clause_attention or not self.core.config.clause_tokens:
            return None
        return PRIMARY_LAYOUT

    def condition_draws(self, x0, rng):
        return self.layout.training_draws(x0, lambda lo, hi: rng.randint(lo, hi).to(self.device),
                                          lambda shape: self.randn(shape, rng))

    def model_input(self, x0, xt, drawn):
        return self.layout.training_input(x0, xt, drawn, self.alphas)

    @property
    def primary(self) -> bool:
        return self.layout.name == PRIMARY_LAYOUT

    def index_updates(self, index) -> None:
        weights = None if self.primary else layout_weights_file(self.layout.name)
        index.set_layout(self.layout.name, self.schedule.to_dict(), weights, self.layout.options(),
                         fill_from=None if self.primary else self.fill_from)
        if self.primary:
            d = self.cfg.data
            index.defaults = {**index.defaults, "height": d.resolution, "width": d.resolution,
                              "num_frames": d.num_frames, "fps": float(d.fps)}

    def export(self, model_dir: Path, weights: dict[str, torch.Tensor]) -> None:
        if self.primary:
            return super().export(model_dir, weights)
        if self.lora is not None:  # the adapter merged into this layout's temporal weights
            weights = {k: v for k, v in self.merged_weights(weights).items() if is_video_param(k)}
        with staged_folder(model_dir) as dst:
            index = base_index(self.src, dst, keep_unet=True)
            path = dst / layout_weights_file(self.layout.name)
            path.parent.mkdir(parents=True, exist_ok=True)
            if path.exists():
                path.unlink()  # a hard link to the previous model's file: never write through it
            dtype = self.cfg.export_dtype
            save_file({k: v.detach().to(dtype).contiguous().cpu() for k, v in weights.items()}, str(path),
                      metadata={"format": "pt", "content": f"emu-video temporal weights ({self.layout.name})"})
            self.index_updates(index)
            finish_index(dst, index, f"{self.cfg.stage.name or self.layout.name} stage")

    def sample(self, model_dir: Path, out_stem: Path, prompts: list[str], steps: int, seed: int) -> list[Path]:
        from emu_video.io.video import write_video
        from emu_video.pipelines import TextToVideoPipeline

        pipe = TextToVideoPipeline.from_pretrained(model_dir, device=self.device)
        paths = []
        for k, prompt in enumerate(prompts):
            out = pipe(prompt, seed=seed + k, num_inference_steps=steps, interpolation_steps=steps,
                       direct=not self.layout.has_image, progress=False)
            paths.append(write_video(out_stem.with_name(f"{out_stem.name}-{k}.mp4"), out.frames, out.fps))
        return paths
