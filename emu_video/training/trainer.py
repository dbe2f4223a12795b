"""The training loop shared by every stage: micro-batches with gradient accumulation, AdamW with a
warm-up, gradient clipping, EMA, NaN/Inf guard, checkpoints and resumption, time budget, samples, export.

Resumption is exact: the data position of every rank, the optimizer, the EMA, the step (which fixes the
learning rate) and the random streams (seeded per step and rank) all come back from the checkpoint.
"""

from __future__ import annotations

import hashlib
import math
import time
from pathlib import Path

import torch

from emu_video.data.loader import BatchStream
from emu_video.errors import UserError
from emu_video.training import checkpoint as ckpt
from emu_video.training.config import TrainingConfig
from emu_video.training.data_setup import build_data, first_caption
from emu_video.training.ema import EMA
from emu_video.training.feedback import Feedback, log, setup_logging
from emu_video.training.graphed_update import GraphedUpdate
from emu_video.training.lr import set_lr, warmup_constant
from emu_video.training.model_setup import model_source
from emu_video.training.parallel import Parallel
from emu_video.training.profiling import StepProfiler, phase
from emu_video.training.task_registry import build_task
from emu_video.training.train_state import (
    SampleRandom,
    load_optimizer_tensors,
    optimizer_tensors,
    rng_state,
    set_rng_state,
)

CHECKPOINT_FORMAT = 1


class TrainingDiverged(UserError):
    """The loss stayed NaN/Inf for too many steps in a row."""


def resolve_precision(cfg: TrainingConfig, device: torch.device):
    """(autocast dtype or None, dtype of the frozen weights)."""
    p = cfg.train.precision
    if p == "auto":
        p = "bf16" if device.type == "cuda" and torch.cuda.is_bf16_supported() else "fp32"
    autocast = torch.bfloat16 if p == "bf16" else None
    frozen = cfg.train.frozen_dtype
    if frozen == "auto":  # under FSDP too: its shards of frozen weights are then bf16, gathered without a cast
        frozen = "bf16" if autocast is not None else "fp32"
    if frozen == "bf16" and autocast is None:
        raise UserError("train.frozen_dtype=bf16 needs train.precision=bf16 (bf16 weights need bf16 autocast)")
    return autocast, torch.bfloat16 if frozen == "bf16" else torch.float32


def grad_accum_steps(cfg: TrainingConfig, world_size: int) -> int:
    t = cfg.train
    if not t.global_batch_size:
        return t.grad_accum
    per_step = t.batch_size * world_size
    if t.global_batch_size % per_step:
        raise UserError(f"train.global_batch_size={t.global_batch_size} is not a multiple of batch_size x processes "
                        f"= {t.batch_size} x {world_size}; change one of them (or set global_batch_size=0)")
    return t.global_batch_size // per_step


def use_channels_last(setting: str, device: torch.device, strategy: str) -> bool:
    """train.channels_last: "auto" is on for CUDA runs whose weights FSDP does not shard (it shards them
    as contiguous tensors)."""
    if setting == "auto":
        return device.type == "cuda" and strategy != "fsdp"
    return setting == "on"


def build_optimizer(params, o, device: torch.device, strategy: str, recorded: bool) -> torch.optim.Optimizer:
    """AdamW with the `[optim]` settings: one fused kernel for the whole update on GPUs (FSDP's sharded
    parameters keep the default). A recorded step needs it fused everywhere (it skips non-finite updates
    on the device) and capturable (step counts on the device), with the learning rate in a tensor.
    optim.optimizer=adamw8bit: bitsandbytes' AdamW with 8-bit moments (block-wise quantised)."""
    common = {"betas": tuple(o.betas), "eps": o.eps, "weight_decay": o.weight_decay}
    if o.optimizer == "adamw8bit":
        try:
            import bitsandbytes
        except ImportError:
            raise UserError("optim.optimizer=adamw8bit needs bitsandbytes: pip install 'emu-video[lowmem]'") from None
        return bitsandbytes.optim.AdamW8bit(params, lr=o.lr, **common)
    if recorded:
        return torch.optim.AdamW(params, lr=torch.tensor(o.lr, device=device), fused=True, capturable=True, **common)
    fused = device.type == "cuda" and strategy != "fsdp"
    return torch.optim.AdamW(params, lr=o.lr, **common, **({"fused": True} if fused else {}))


class Trainer:
    def __init__(self, cfg: TrainingConfig, parallel: Parallel | None = None):
        self.cfg = cfg
        self.par = par = parallel or Parallel(cfg.parallel.strategy, cfg.parallel.backend, cfg.train.device)
        self.out = Path(cfg.train.output_dir)
        setup_logging(self.out / "logs", par.rank)
        self.autocast, frozen_dtype = resolve_precision(cfg, par.device)
        self.frozen_dtype = frozen_dtype
        self.accum = grad_accum_steps(cfg, par.world_size)
        self.src = model_source(cfg) if cfg.is_diffusion else None
        self.dataset, inputs = build_data(cfg, self.src, par.device, frozen_dtype)
        self.task = build_task(cfg, par.device, self.autocast, self.src, inputs)
        self.task.cast_frozen(frozen_dtype)
        if use_channels_last(cfg.train.channels_last, par.device, par.strategy):
            self.task.to_channels_last()
        self.task.net = par.wrap(self.task.core, self.task.shard_units(), bf16=self.autocast is not None)
        self.named = self.task.trainable()
        if not self.named:
            raise UserError("this stage has no trainable parameters")
        o = cfg.optim
        graphed = cfg.train.cuda_graph
        if graphed and (par.world_size > 1 or self.accum > 1):
            raise UserError(f"train.cuda_graph records one micro-batch of one process; this run has "
                            f"{par.world_size} processes and {self.accum} micro-batches per step")
        self.params = [p for _, p in self.named]
        self.max_grad_norm = o.grad_clip if o.grad_clip > 0 else float("inf")  # grad_clip 0: no clipping
        self.optimizer = build_optimizer(self.params, o, par.device, par.strategy, graphed)
        self.ema = EMA(self.named, cfg.train.ema_decay, cfg.train.ema_warmup)
        self.graphed = (GraphedUpdate(self.task, self.params, self.optimizer, self.ema, self.max_grad_norm,
                                      cfg.train.cuda_graph_warmup) if graphed else None)
        self.store = ckpt.CheckpointStore(self.out / "checkpoints", cfg.train.keep_checkpoints,
                                          int(cfg.train.max_file_mib * 2**20))
        self.step = 0
        self.nonfinite_total = 0  # steps skipped for a NaN/Inf loss or gradient, over the whole run
        self.nonfinite_run = 0  # ... in a row, up to now
        self.elapsed_before = 0.0  # training seconds of earlier runs (from the checkpoint)
        self.last_save_seconds = 0.0
        self._t_begin = time.monotonic()
        data_state = self._resume()
        self.stream = BatchStream(self.dataset, cfg.train.batch_size, par.rank, par.world_size, cfg.train.seed,
                                  cfg.data.shuffle, cfg.data.num_workers, data_state)

    # Checkpoints ------------------------------------------------------------------------------------------
    def _gather(self, pairs) -> dict[str, torch.Tensor]:
        out = {}
        for name, t in pairs:
            full = self.par.full_tensor(t.detach())
            if self.par.is_main:
                out[name] = full.float().cpu().clone()
        return out

    def _base_ref(self) -> dict:
        f = self.src.unet_weights_file if self.src is not None else None
        if f is None or not f.exists():
            return {}
        return {"path": str(f), "size": f.stat().st_size}

    def save(self) -> Path | None:
        """Write a checkpoint of this step; returns its folder (rank 0; None on the other ranks)."""
        t0 = time.monotonic()
        path = None
        tensors = {"trainable": self._gather(self.named)}
        if self.ema.enabled:
            tensors["ema"] = self._gather(self.ema.named_tensors())
        opt = optimizer_tensors(self.optimizer, self.named, self.par.full_tensor)
        tensors["optimizer"] = opt if self.par.is_main else {}
        data = self.par.gather_objects(self.stream.state_dict())
        if self.par.is_main:
            state = {
                "format": CHECKPOINT_FORMAT, "step": self.step, "stage": self.cfg.stage.kind,
                "world_size": self.par.world_size, "data": data, "rng": rng_state(),
                "nonfinite_steps": self.nonfinite_total, "elapsed_seconds": self.elapsed(),
                "base_model": self._base_ref(), "config": self.cfg.to_dict(),
            }
            path = self.store.write(self.step, tensors, state)
            log.info("checkpoint %s (%.1f s)", path, time.monotonic() - t0)
        self.par.barrier()
        self.last_save_seconds = time.monotonic() - t0
        return path

    def _resume(self) -> dict | None:
        if self.par.is_main:
            self.store.remove_partial()
        self.par.barrier()
        latest = self.store.latest()
        name = self.par.broadcast_object(latest.name if latest is not None else None)
        if name is None:
            return None
        folder = self.store.root / name
        state = ckpt.read_state(folder)
        if state.get("stage") != self.cfg.stage.kind:
            raise UserError(f"{folder} is a {state.get('stage')} checkpoint; this is a {self.cfg.stage.kind} stage "
                            "(use another train.output_dir)")
        base = self._base_ref()
        if state.get("base_model") and base and state["base_model"]["size"] != base["size"]:
            log.warning("the frozen weights in %s changed since this run started", base["path"])
        weights = ckpt.read_tensors(folder, "trainable")
        names = {n for n, _ in self.named}
        if set(weights) != names:
            raise UserError(f"{folder} does not hold this stage's trainable weights "
                            f"({len(set(weights) ^ names)} names differ)")
        with torch.no_grad():
            for n, p in self.named:
                p.copy_(self.par.shard_like(weights[n], p))
            if self.ema.enabled:
                ema = ckpt.read_tensors(folder, "ema") if ckpt.tensor_files(folder, "ema") else weights
                self.ema.load({n: self.par.shard_like(ema[n], p) for n, p in self.named})
        load_optimizer_tensors(self.optimizer, self.named, ckpt.read_tensors(folder, "optimizer"), self.par.shard_like)
        set_rng_state(state.get("rng", {}))
        self.step = int(state["step"])
        self.nonfinite_total = int(state.get("nonfinite_steps", 0))
        self.elapsed_before = float(state.get("elapsed_seconds", 0.0))
        data = state.get("data") or [{}]
        if len(data) == self.par.world_size:
            mine = data[self.par.rank]
        else:
            log.warning("resuming %d-process data positions with %d processes: epochs restart at an estimated "
                        "position", len(data), self.par.world_size)
            mine = dict(data[0])
            mine["position"] = sum(int(d.get("position", 0)) for d in data) // self.par.world_size
        log.info("resumed from %s at step %d", folder, self.step)
        return mine

    # The loop ---------------------------------------------------------------------------------------------
    def elapsed(self) -> float:
        return self.elapsed_before + time.monotonic() - self._t_begin

    def _time_is_up(self, step_seconds: float) -> bool:
        budget = self.cfg.train.max_minutes * 60.0
        if budget <= 0:
            return False
        margin = 2.0 * step_seconds + 2.0 * self.last_save_seconds + 5.0  # room for the last checkpoint + export
        return self.par.any(time.monotonic() - self._t_begin + margin >= budget)

    def train_step(self) -> dict:
        cfg, par = self.cfg, self.par
        lr = warmup_constant(self.step, cfg.optim.lr, cfg.optim.warmup_steps)
        set_lr(self.optimizer, lr)
        local, grad_norm, bad, indices = self._graphed_step() if self.graphed else self._eager_step()
        if bad:
            self.nonfinite_run += 1
            self.nonfinite_total += 1
        else:
            self.nonfinite_run = 0
        self.step += 1
        loss_mean, skipped = par.mean(local), par.mean(self.stream.skipped_total) * par.world_size
        return {"loss": loss_mean, "lr": lr, "grad_norm": grad_norm, "skipped": int(round(skipped)),
                "nonfinite": bad, "indices": indices, "local_loss": local}

    def _micro_batch(self) -> tuple[dict, list[int], SampleRandom]:
        """The next micro-batch, its samples' dataset indices and their random streams (drawn per sample, so
        any split of the global batch draws the same)."""
        with phase("data"):
            batch = self.stream.next_batch()
        keys = [int(i) for i in batch["index"]]
        return batch, keys, SampleRandom(self.cfg.train.seed, self.step, keys, self.par.device)

    def _eager_step(self) -> tuple[float, float, bool, list[int]]:
        par = self.par
        total = torch.zeros((), device=par.device)
        indices: list[int] = []
        for micro in range(self.accum):
            batch, keys, rng = self._micro_batch()
            indices += keys
            with par.no_sync(self.task.net, micro < self.accum - 1), phase("forward_backward"):
                loss = self.task.loss(batch, rng)
                with phase("backward"):
                    (loss / self.accum).backward()
            total += loss.detach().float()
        with phase("loss_sync"):
            local = float(total.item()) / self.accum
            bad = par.any(not math.isfinite(local))
        grad_norm = float("nan")
        if not bad:
            with phase("clip"):
                grad_norm = torch.nn.utils.clip_grad_norm_(self.params, self.max_grad_norm)
                grad_norm = float(par.full_tensor(grad_norm).item())
                bad = not math.isfinite(grad_norm)
        if bad:
            self.optimizer.zero_grad(set_to_none=True)
        else:
            with phase("optimizer"):
                self.optimizer.step()
                self.optimizer.zero_grad(set_to_none=True)
            with phase("ema"):
                self.ema.update(self.step)
        return local, grad_norm, bad, indices

    def _graphed_step(self) -> tuple[float, float, bool, list[int]]:
        batch, keys, rng = self._micro_batch()
        with phase("draw"):
            drawn = self.task.draw(batch, rng)
        with phase("recorded_step" if self.graphed.recorded else "forward_backward"):
            local, grad_norm, bad = self.graphed(drawn, 1.0 - self.ema.decay_at(self.step))
        return local, grad_norm, bad, keys

    def run(self) -> str:
        """Train to train.max_steps (or the time budget); returns "finished" or "paused"."""
        cfg, par = self.cfg, self.par
        t = cfg.train
        self._t_begin = time.monotonic()
        self.nonfinite_run = 0
        if par.is_main:
            self.out.mkdir(parents=True, exist_ok=True)
            ckpt.write_text_atomic(self.out / "config.toml", cfg.to_toml())
        fb = Feedback(self.out, par.rank, t.max_steps, self.step, cfg.log.progress, cfg.log.tensorboard,
                      cfg.log.rank_logs, cfg.stage.name or cfg.stage.kind,
                      checkpoint=self.store.latest() if par.is_main else None)
        samples_per_step = t.batch_size * self.accum * par.world_size
        profiler = StepProfiler(self.out / "logs", par.rank, cfg.log.profile_from, cfg.log.profile_steps, par.device)
        precision = "bf16 autocast" if self.autocast is not None else "fp32"
        precision += f", frozen weights {str(self.frozen_dtype).removeprefix('torch.')}"
        if self.graphed is not None:
            precision += f", step replayed from a CUDA graph after {t.cuda_graph_warmup} warm-up steps"
        fb.message(f"{cfg.stage.kind} stage: {par.describe()}, {precision}, "
                   f"{sum(p.numel() for _, p in self.named):,} trainable "
                   f"parameters, {samples_per_step} samples/step ({t.batch_size} x {self.accum} accumulation x "
                   f"{par.world_size} processes), steps {self.step}..{t.max_steps}")
        fb.status("running", self.step)
        state, last_saved = "finished", self.step
        try:
            while self.step < t.max_steps:
                profiler.before_step(self.step + 1)
                t0 = time.perf_counter()
                r = self.train_step()
                dt = time.perf_counter() - t0
                for path in profiler.after_step():
                    fb.message(f"profile of steps {profiler.start}..{self.step}: {path}")
                fb.rank_record({"step": self.step, "indices": r["indices"], "loss": r["local_loss"]})
                if self.step % cfg.log.every == 0 or self.step == t.max_steps:
                    scalars = {"loss": r["loss"], "lr": r["lr"], "grad_norm": r["grad_norm"], "skipped": r["skipped"],
                               "nonfinite": r["nonfinite"], "nonfinite_steps": self.nonfinite_total,
                               "step_seconds": dt, "samples_per_second": samples_per_step / max(dt, 1e-9)}
                    if par.device.type == "cuda":
                        scalars["max_memory_gib"] = torch.cuda.max_memory_allocated(par.device) / 2**30
                    fb.step(self.step, scalars)
                if r["nonfinite"]:
                    fb.message(f"step {self.step}: non-finite loss or gradient, update skipped "
                               f"({self.nonfinite_run} in a row)", warning=True)
                    if self.nonfinite_run >= t.max_nonfinite_steps:
                        last = self.store.latest()
                        msg = (f"the loss was NaN/Inf for {self.nonfinite_run} steps in a row (step {self.step}); "
                               f"stopped. The last good checkpoint is {last or 'none'}. Lower optim.lr, check the "
                               "data, or use train.precision=fp32")
                        fb.status("failed", self.step, msg)
                        raise TrainingDiverged(msg)
                due = self.step % t.checkpoint_every == 0 or self.step == t.max_steps
                if due and self.nonfinite_run == 0:  # never checkpoint in the middle of a NaN streak
                    fb.checkpointed(self.step, self.save())
                    last_saved = self.step
                if cfg.sample.every and self.step % cfg.sample.every == 0:
                    self.write_samples(fb)
                if self.step < t.max_steps and self._time_is_up(dt):
                    state = "paused"
                    break
            if last_saved != self.step:
                fb.checkpointed(self.step, self.save())
            if state == "finished" or t.export_on_stop:
                self.export()
            msg = (f"finished {self.step} steps; model in {self.out / 'model'}" if state == "finished" else
                   f"time budget reached at step {self.step}/{t.max_steps}; run the same command to continue")
            fb.message(msg)
            fb.status(state, self.step, msg)
            if cfg.log.rank_logs:
                fb.rank_record({"final": True, "step": self.step, "weights_sha256": self.fingerprint()})
        finally:
            profiler.finish()  # a run that ends inside the profiled steps still writes what it has
            fb.close()
            self.stream.close()
        return state

    # Outputs ---------------------------------------------------------------------------------------------
    def export(self, model_dir: Path | None = None) -> Path:
        """Write the model folder from the EMA weights (rank 0; every rank takes part in the gather); with LoRA
        also the adapter, to OUTPUT/lora."""
        model_dir = model_dir or self.out / "model"
        weights = self._gather(self.ema.named_tensors())
        if self.par.is_main:
            adapter = self.task.save_adapter(self.out / "lora", weights)
            if adapter is not None:
                log.info("wrote LoRA adapter %s", adapter)
            self.task.export(model_dir, weights)
            log.info("wrote model folder %s", model_dir)
        self.par.barrier()
        return model_dir

    def write_samples(self, fb: Feedback) -> None:
        s = self.cfg.sample
        weights = self._gather(self.ema.named_tensors())
        if self.par.is_main:
            folder = self.out / "samples"
            self.task.export(folder / ".model", weights)
            prompts = s.prompts or [first_caption(self.dataset)]
            for path in self.task.sample(folder / ".model", folder / f"step-{self.step:08d}", prompts, s.steps, s.seed):
                fb.message(f"sample {path}")
        self.par.barrier()

    def fingerprint(self) -> str:
        """SHA-256 of this rank's (gathered) trainable weights, to check that replicas agree."""
        h = hashlib.sha256()
        for name, p in self.named:
            full = self.par.full_tensor(p.detach()).float().cpu().contiguous()
            h.update(name.encode())
            h.update(full.numpy().tobytes())
        return h.hexdigest()


def train(cfg: TrainingConfig) -> str:
    """Run one stage to its end or time budget; returns "finished" or "paused"."""
    par = Parallel(cfg.parallel.strategy, cfg.parallel.backend, cfg.train.device)
    try:
        return Trainer(cfg, par).run()
    finally:
        par.close()
