#!/usr/bin/env python
"""Emu Video's U-Net against diffusers' video U-Net, on one GPU, in one run.

Measures, each in its own try/except (an OOM or a compile error is reported and the rest still runs):

  ceiling  plain bf16 matmul 8192^3 (the GPU's practical peak, measured in the same run)
  unet     our `sd15` configuration against diffusers `UNetMotionModel` (SD 1.5 + default MotionAdapter) at
           identical shapes: 16 frames of 64x64 latents, the three guidance passes batched (batch 3); plus
           our U-Net with each optimisation switched on in turn
  paper    the `paper` configuration at 8 and 16 frames (512px: 64x64 latents), plus the two other shapes
           the pipeline runs (first frame: 2 passes x 1 frame; interpolation: 3 x 37 frames)
  train    a training step of the 256px stage (32x32 latents, frozen spatial weights, temporal layers
           trained with AdamW under bf16 autocast) for both U-Nets, and ours at twice the peer's batch
  e2e      the factorized pipeline in the `paper` configuration (random weights: CLIP-L and T5-XL shaped
           text encoders, the paper's VAE) making a 65-frame 512px video at 50 and 250 steps

FLOPs are counted with torch.utils.flop_counter.FlopCounterMode on one eager step; step times with CUDA
events after warm-up; memory as the caching allocator's peaks (allocated, and reserved: reserved includes
CUDA-graph pools). A time budget keeps the run short: measurements that do not fit are skipped or, for
the 250-step video, extrapolated from measured runs (the output says which).

    python benchmarks/bench_unet.py --out results.json            # the full run on one GPU
    python benchmarks/bench_unet.py --cpu-smoke --out smoke.json  # tiny shapes on the CPU
"""

from __future__ import annotations

import argparse
import datetime
import json
import platform
import sys
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from benchlib_measure import (  # noqa: E402
    Env,
    HashTokenizer,
    build_ours,
    build_peer,
    count_flops,
    error_text,
    ours_inputs,
    peer_inputs,
    sdpa_context,
    time_steps,
)
from benchlib_report import Budget, GiB, Report, Shapes, markdown_table, smoke_shapes  # noqa: E402

from emu_video.training.graphed_step import GraphedTrainStep  # noqa: E402

SECTIONS = ("ceiling", "unet", "paper", "e2e", "train")  # e2e reuses the compiled paper U-Net
# share of activations the compiled 2x-batch training row keeps (set_compile memory_budget); measured to fit
# twice the peer's batch in less than its memory at about 5 % more time per sample
TRAIN_MEMORY_BUDGET = 0.5


# The benchmark ------------------------------------------------------------------------------------------
class Bench:
    def __init__(self, args, env: Env, shapes: Shapes, report: Report):
        self.args, self.env, self.s, self.report = args, env, shapes, report
        self.budget = Budget(args.budget_s)
        self.sections: list[str] = list(SECTIONS)
        self.paper_unet = None
        self._paper_optimized = False
        self.compile_backend = args.compile_backend
        self.dynamic = {"auto": None, "static": False, "dynamic": True}[args.dynamic]
        self.compile_kwargs = {} if args.inductor_mode == "default" else {"inductor_mode": args.inductor_mode}
        if args.tune_kernels:
            self.compile_kwargs["tune_kernels"] = True

    # helpers --
    def row(self, section: str, key: str, name: str, shape: str, **fields) -> dict[str, Any]:
        return self.report.add({"section": section, "key": key, "name": name, "shape": shape, **fields})

    def skip(self, section: str, key: str, name: str, why: str) -> None:
        self.row(section, key, name, "", skipped=why)

    def measure(self, section: str, key: str, name: str, shape: str, fn: Callable[[], Any], flops: int | None,
                warmup: int | None = None, iters: int | None = None, need_s: float = 5.0, notes: str = "",
                extra: dict | None = None) -> dict[str, Any] | None:
        """Time `fn` (one step); one row with ms, TFLOP/s and peak memory, or the error."""
        env, args = self.env, self.args
        if self.budget.left() < need_s:
            self.skip(section, key, name, f"time budget ({self.budget.left():.0f} s left, needs ~{need_s:.0f} s)")
            return None
        env.free()
        env.reset_peak()
        try:
            timing = time_steps(env, fn, warmup or args.warmup, iters or args.iters,
                                max_seconds=max(2.0, min(args.max_measure_s, self.budget.left() / 4)))
        except Exception as exc:  # noqa: BLE001 - reported, and the run goes on
            self.row(section, key, name, shape, error=error_text(exc), trace=traceback.format_exc()[-2000:])
            env.free()
            return None
        tflops = flops / (timing["ms"] / 1e3) / 1e12 if flops else None
        return self.row(section, key, name, shape, ms=timing["ms"], flops=flops, tflops=tflops, notes=notes,
                        first_call_s=timing["first_call_s"], ms_all=timing["ms_all"], **env.peak(), **(extra or {}))

    def flops_of(self, label: str, fn: Callable[[], Any]) -> int | None:
        try:
            with torch.inference_mode():
                return count_flops(fn)
        except Exception as exc:  # noqa: BLE001
            self.report.note(f"FLOP count of {label} failed: {error_text(exc)}")
            return None

    def profile(self, label: str, fn: Callable[[], Any], steps: int = 2) -> None:
        """The kernels that take the time in one step (torch.profiler), kept in the JSON for diagnosis."""
        from torch.profiler import ProfilerActivity, profile

        activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if self.env.cuda else [])
        try:
            with torch.inference_mode():
                fn()
                self.env.sync()
                with profile(activities=activities) as prof:
                    for _ in range(steps):
                        fn()
                    self.env.sync()
            table = None
            for sort in (("device_time_total", "cuda_time_total") if self.env.cuda else ("cpu_time_total",)):
                try:
                    table = prof.key_averages().table(sort_by=sort, row_limit=30, max_name_column_width=70)
                    break
                except Exception:  # noqa: BLE001 - the sort key's name changed across torch versions
                    continue
            self.report.meta.setdefault("profiles", {})[label] = f"{steps} steps\n" + table
            print(f"  profile of {label} kept in the JSON (meta.profiles)", flush=True)
        except Exception as exc:  # noqa: BLE001
            self.report.note(f"profile of {label} failed: {error_text(exc)}")

    def graph_warmup(self) -> int:
        return max(self.args.warmup, 3)  # graphs record on the 3rd call of a shape

    # sections --
    def ceiling(self) -> None:
        env, n = self.env, self.s.matmul
        a = torch.randn(n, n, device=env.device, dtype=torch.bfloat16)
        b = torch.randn(n, n, device=env.device, dtype=torch.bfloat16)
        self.measure("ceiling", "matmul", f"bf16 matmul {n}^3", f"{n}x{n}x{n}", lambda: a @ b, 2 * n**3,
                     warmup=3, iters=10 if env.cuda else 3)
        del a, b

    def unet(self) -> None:
        s, env, args = self.s, self.env, self.args
        shape = f"B={s.guidance} T={s.frames} {s.latent}x{s.latent}"
        # the peer, as diffusers runs it (bf16, SDPA attention, eager)
        peer = None
        try:
            peer = build_peer(s.peer, env, env.dtype)
            self.report.meta["peer_params"] = sum(p.numel() for p in peer.parameters())
            for batch, key, label in ((s.guidance, "peer", "diffusers UNetMotionModel (eager)"),
                                      (s.peer_ref_batch, "peer_ref", "diffusers UNetMotionModel, reference batch")):
                if key == "peer_ref" and args.quick:
                    continue
                x, t, ctx = peer_inputs(peer, env, batch, s.frames, s.latent, s.text_len, env.dtype)
                fn = lambda: peer(x, t, encoder_hidden_states=ctx, return_dict=False)[0]  # noqa: E731
                flops = self.flops_of(label, fn)
                with torch.inference_mode():
                    self.measure("unet", key, label, f"B={batch} T={s.frames} {s.latent}x{s.latent}", fn, flops,
                                 need_s=10)
            if args.profile and self.budget.left() > 60:
                x, t, ctx = peer_inputs(peer, env, s.guidance, s.frames, s.latent, s.text_len, env.dtype)
                self.profile("peer", lambda: peer(x, t, encoder_hidden_states=ctx, return_dict=False)[0])
            if args.peer_compile:
                peer_c = torch.compile(peer, dynamic=False, backend=self.compile_backend)
                x, t, ctx = peer_inputs(peer, env, s.guidance, s.frames, s.latent, s.text_len, env.dtype)
                fn = lambda: peer_c(x, t, encoder_hidden_states=ctx, return_dict=False)[0]  # noqa: E731
                peer_row = self.report.find("peer")
                with torch.inference_mode():
                    self.measure("unet", "peer_compiled", "diffusers UNetMotionModel (torch.compile)", shape, fn,
                                 peer_row["flops"] if peer_row else None, need_s=90)
        except Exception as exc:  # noqa: BLE001
            self.row("unet", "peer", "diffusers UNetMotionModel", shape, error=error_text(exc),
                     trace=traceback.format_exc()[-2000:])
        del peer
        env.free()

        # ours, optimisations switched on one at a time
        try:
            model = build_ours(s.ours_small, env)
        except Exception as exc:  # noqa: BLE001
            self.row("unet", "ours", f"ours ({s.ours_small})", shape, error=error_text(exc))
            return
        self.report.meta[f"ours_{s.ours_small}_params"] = model.parameter_counts()
        x, t, ctx = ours_inputs(model, env, s.guidance, s.frames, s.latent, s.text_len)
        fn = lambda: model(x, t, ctx)  # noqa: E731
        flops = self.flops_of("ours", fn)
        graphs_ok = env.cuda and not args.no_cuda_graphs
        steps = [
            ("ours_ref", "ours: reference (eager, NCHW, separate q/k/v, transposed temporal layout)",
             lambda: model.set_fast_paths(False)),
            ("ours_fast", "+ fused q/k/v, temporal layers without transposes", lambda: model.set_fast_paths(True)),
            ("ours_cl", "+ channels-last frames", lambda: model.to_channels_last(True)),
        ]
        if graphs_ok:
            steps.append(("ours_graphs", "+ CUDA graphs (eager kernels)", lambda: model.enable_cuda_graphs(True)))
            if args.sdpa == "default":
                steps.append(("ours_graphs_cudnn_attn", "+ CUDA graphs, cuDNN attention preferred",
                              lambda: model.reset_cuda_graphs()))
        if args.compile != "none":
            steps.append(("ours_compile", f"+ torch.compile ({args.compile}), no graphs",
                          lambda: (model.enable_cuda_graphs(False), self._compile(model))))
            if graphs_ok:
                steps.append(("ours_opt", f"+ torch.compile ({args.compile}) + CUDA graphs",
                              lambda: model.enable_cuda_graphs(True)))
        if args.quick:
            def apply_all():
                model.set_fast_paths(True).to_channels_last(True)
                if args.compile != "none":
                    self._compile(model)
                model.enable_cuda_graphs(graphs_ok)

            steps = [steps[0], ("ours_opt", "ours: all optimisations", apply_all)]
        for key, label, apply in steps:
            try:
                apply()
            except Exception as exc:  # noqa: BLE001
                self.row("unet", key, label, shape, error=error_text(exc))
                continue
            compiling = key in ("ours_compile", "ours_opt") and args.compile != "none"
            graphs = model.cuda_graphs is not None
            attention = sdpa_context("cudnn" if key == "ours_graphs_cudnn_attn" else "default")
            with torch.inference_mode(), attention:
                r = self.measure("unet", key, label, shape, fn, flops,
                                 warmup=self.graph_warmup() if graphs else None, need_s=120 if compiling else 10)
            if key == "ours_graphs_cudnn_attn":
                model.reset_cuda_graphs()  # recorded with cuDNN attention: not for the next rows
            if r is not None and graphs and model.cuda_graphs.failures:
                self.report.note(f"{key}: CUDA graph failures: {list(model.cuda_graphs.failures.values())[:1]}")
        self._mark_best("unet", ("ours_opt", "ours_compile", "ours_graphs_cudnn_attn", "ours_graphs", "ours_cl",
                                 "ours_fast"), "ours_best")
        if args.profile and self.budget.left() > 60:
            graphs = model.cuda_graphs is not None
            model.enable_cuda_graphs(False)
            self.profile("ours", fn)
            model.enable_cuda_graphs(graphs)
        model.reset_cuda_graphs()
        del model, x, ctx
        env.free()
        torch._dynamo.reset()

    def _compile(self, model) -> None:
        model.set_compile(self.args.compile, dynamic=self.dynamic, backend=self.compile_backend,
                          image_model=self.args.compile_image_model, **self.compile_kwargs)

    def _mark_best(self, section: str, keys: tuple[str, ...], best_key: str) -> None:
        rows = [self.report.find(k) for k in keys]
        rows = [r for r in rows if r is not None and r.get("ms")]
        if rows:
            best = min(rows, key=lambda r: r["ms"])
            self.report.summary[best_key] = best["key"]

    def paper(self) -> None:
        s, env, args = self.s, self.env, self.args
        try:
            model = self.paper_unet or build_ours(s.ours_paper, env)
        except Exception as exc:  # noqa: BLE001
            self.row("paper", "paper", f"ours ({s.ours_paper})", "", error=error_text(exc))
            return
        self.paper_unet = model
        self.report.meta[f"ours_{s.ours_paper}_params"] = model.parameter_counts()
        # (key, label, batch, frames, use_temporal). The interpolation shape, most of a video's work, comes
        # first: with --dynamic auto it gets the static compile, later frame counts share a dynamic one.
        cases = [("paper_interp", f"paper, interpolation window ({s.interp_frames} frames)", s.guidance,
                  s.interp_frames, True)]
        for f in sorted(s.paper_frames, reverse=True):
            if args.quick and f != max(s.paper_frames):
                continue
            cases.append((f"paper_{f}f", f"paper, {f} frames", s.guidance, f, True))
        t2i_note = "" if args.compile_image_model or args.compile == "none" else " (not compiled)"
        cases.append(("paper_t2i", f"paper, first frame (T2I: 2 passes, 1 frame){t2i_note}", 2, 1, False))
        prepared = []
        for key, label, batch, frames, temporal in cases:
            x, t, ctx = ours_inputs(model, env, batch, frames, s.latent, s.text_len, conditioned=temporal)
            fn = (lambda x=x, t=t, ctx=ctx, temporal=temporal: model(x, t, ctx, use_temporal=temporal))
            flops = self.flops_of(label, fn)
            prepared.append((key, label, batch, frames, fn, flops))
        # the unoptimised path once, for scale
        if not args.quick:
            key, label, batch, frames, fn, flops = next(p for p in prepared if p[0] == f"paper_{max(s.paper_frames)}f")
            model.set_fast_paths(False)
            with torch.inference_mode():
                self.measure("paper", key + "_ref", label + ": reference (eager, NCHW)",
                             f"B={batch} T={frames} {s.latent}x{s.latent}", fn, flops, iters=min(args.iters, 5), need_s=20)
        try:
            self._optimize(model)
        except Exception as exc:  # noqa: BLE001
            self.report.note(f"optimising the paper U-Net failed ({error_text(exc)}); measuring it uncompiled")
            model.set_compile("none")
        self._paper_optimized = True
        for key, label, batch, frames, fn, flops in prepared:
            with torch.inference_mode():
                self.measure("paper", key, label + ": optimised", f"B={batch} T={frames} {s.latent}x{s.latent}", fn,
                             flops, warmup=self.graph_warmup(), need_s=60)
        if model.cuda_graphs is not None and model.cuda_graphs.failures:
            self.report.note(f"paper: CUDA graph failures: {list(model.cuda_graphs.failures.values())[:1]}")
        env.free()

    def _optimize(self, model) -> None:
        args = self.args
        model.optimize_for_inference(dtype=self.env.dtype, channels_last=True, compile="none",
                                     cuda_graphs=self.env.cuda and not args.no_cuda_graphs)
        if args.compile != "none":
            self._compile(model)

    def train(self) -> None:
        s, env, args = self.s, self.env, self.args
        shape = lambda b, f: f"B={b} T={f} {s.train_latent}x{s.train_latent}"  # noqa: E731
        # the peer: fp32 weights, bf16 autocast, only the motion modules train (as the reference measured)
        peer_peak = None
        peer = None
        try:
            peer = build_peer(s.peer, env, torch.float32)
            peer.freeze_unet2d_params()
            peer.train()
            params = [p for p in peer.parameters() if p.requires_grad]
            opt = self._adamw(params)
            def peer_fwd_bwd(x, t, ctx, target):
                with env.autocast():
                    out = peer(x, t, encoder_hidden_states=ctx, return_dict=False)[0]
                F.mse_loss(out.float(), target).backward()

            one = peer_inputs(peer, env, 1, s.train_frames, s.train_latent, s.text_len, torch.float32)
            per_sample = self._train_flops("peer", lambda: peer_fwd_bwd(*one, torch.randn_like(one[0])), params)
            flops = per_sample * s.train_batch if per_sample else None
            x, t, ctx = peer_inputs(peer, env, s.train_batch, s.train_frames, s.train_latent, s.text_len, torch.float32)
            target = torch.randn_like(x)

            def peer_step():
                opt.zero_grad(set_to_none=True)
                peer_fwd_bwd(x, t, ctx, target)
                opt.step()

            r = self.measure("train", "train_peer", "diffusers UNetMotionModel (fp32 weights, bf16 autocast)",
                             shape(s.train_batch, s.train_frames), peer_step, flops, iters=args.iters, need_s=20,
                             extra={"batch": s.train_batch, "trainable_params": sum(p.numel() for p in params)})
            peer_peak = r.get("peak_alloc_gib") if r else None
            del opt, params
        except Exception as exc:  # noqa: BLE001
            self.row("train", "train_peer", "diffusers UNetMotionModel", shape(s.train_batch, s.train_frames),
                     error=error_text(exc), trace=traceback.format_exc()[-2000:])
        del peer
        env.free()

        # ours: frozen spatial weights in bf16, temporal weights fp32 (autocast), fused AdamW
        variants = [  # the rows the targets need first; the compiled one is the most expensive to make
            ("train_ours", s.train_batch, False, False, "ours: bf16 frozen weights, channels-last"),
            ("train_ours_2x", 2 * s.train_batch, False, False, "ours at 2x the peer's batch"),
            ("train_ours_2x_ckpt", 2 * s.train_batch, True, False, "ours at 2x batch + activation checkpointing"),
            ("train_ours_compiled", s.train_batch, False, True, "ours + torch.compile (blocks)"),
            ("train_ours_compiled_graphs", s.train_batch, False, True,
             "ours + torch.compile (blocks), the whole step replayed from a CUDA graph"),
            ("train_ours_2x_budget_compiled", 2 * s.train_batch, False, True,
             f"ours at 2x batch + torch.compile (blocks) keeping {TRAIN_MEMORY_BUDGET:g} of the activations"),
            ("train_ours_2x_budget_compiled_graphs", 2 * s.train_batch, False, True,
             f"ours at 2x batch + torch.compile (blocks) keeping {TRAIN_MEMORY_BUDGET:g} of the activations, "
             "replayed from a CUDA graph"),
        ]
        # last: this combination faulted once in a generated kernel, which poisons the CUDA context
        risky = [("train_ours_2x_ckpt_compiled", 2 * s.train_batch, True, True,
                  "ours at 2x batch + activation checkpointing + torch.compile (blocks)")]
        paper = [("train_paper", s.paper_train_batch, True, False,
                  f"paper config, 256px stage ({s.paper_train_frames} frames), checkpointing")]
        if args.compile == "none":
            variants, risky = [v for v in variants if not v[3]], []
        if not env.cuda or args.no_cuda_graphs:
            variants = [v for v in variants if not v[0].endswith("_graphs")]
        if args.quick:
            variants, risky, paper = [v for v in variants if v[0] in ("train_ours", "train_ours_2x_ckpt")], [], []
        if args.train_rows:
            keep = set(args.train_rows.split(","))
            variants, risky, paper = ([v for v in vs if v[0] in keep] for vs in (variants, risky, paper))
        if variants:
            self._train_ours(s.ours_small, variants, shape, "train", s.train_frames)
        if paper:
            self._train_ours(s.ours_paper, paper, shape, "train", s.paper_train_frames)
        if risky:
            self._train_ours(s.ours_small, risky, shape, "train", s.train_frames)
        ours_2x = [self.report.find(k) for k in ("train_ours_2x", "train_ours_2x_ckpt", "train_ours_2x_budget_compiled",
                                                 "train_ours_2x_budget_compiled_graphs", "train_ours_2x_ckpt_compiled")]
        ours_2x = [r for r in ours_2x if r is not None]
        if peer_peak is not None and ours_2x:
            fits = [r for r in ours_2x if r["peak_alloc_gib"] <= peer_peak]
            self.report.summary["train_2x_batch_fits_peer_memory"] = bool(fits)
            if fits:
                self.report.summary["train_2x_batch_row"] = min(fits, key=lambda r: r["ms"])["key"]

    def _adamw(self, params):
        try:
            return torch.optim.AdamW(params, lr=1e-4, fused=self.env.cuda)
        except (RuntimeError, TypeError):
            return torch.optim.AdamW(params, lr=1e-4)

    def _graphed_step(self, model, params, batch_inputs) -> GraphedTrainStep:
        """The training step recorded into one CUDA graph: its own capturable fused AdamW, autocast without
        its weight-cast cache (a cache entry made while recording would not be refilled by a replay)."""
        x, t, ctx, target = batch_inputs
        opt = torch.optim.AdamW(params, lr=1e-4, fused=True, capturable=True)

        def one_step():
            with torch.autocast(self.env.device.type, dtype=torch.bfloat16, cache_enabled=False):
                out = model(x, t, ctx)
            loss = F.mse_loss(out.float(), target)
            loss.backward()
            opt.step()
            return loss

        # one eager step compiles and settles the autotuners; the next records (both inside the untimed warm-up)
        return GraphedTrainStep(one_step, opt, inputs=[x, t, *ctx, target], warmup=1)

    def _train_flops(self, label: str, fwd_bwd: Callable[[], Any], params) -> int | None:
        try:
            flops = count_flops(fwd_bwd)
        except Exception as exc:  # noqa: BLE001
            self.report.note(f"FLOP count of {label} training failed: {error_text(exc)}")
            flops = None
        for p in params:
            p.grad = None
        return flops

    def _train_ours(self, config: str, variants, shape, section: str, frames: int) -> None:
        env, s, args = self.env, self.s, self.args
        try:
            model = build_ours(config, env, torch.float32)
        except Exception as exc:  # noqa: BLE001
            self.row(section, variants[0][0], f"ours ({config}) training", "", error=error_text(exc))
            return
        model.train().freeze_spatial().to_mixed_precision(torch.bfloat16, torch.float32).to_channels_last()
        params = model.video_parameters()
        opt = self._adamw(params)

        def fwd_bwd(x, t, ctx, target):
            with env.autocast():
                out = model(x, t, ctx)
            F.mse_loss(out.float(), target).backward()

        def inputs(batch):
            x, t, ctx = ours_inputs(model, env, batch, frames, s.train_latent, s.text_len)
            target = torch.randn(batch, model.config.out_channels, frames, s.train_latent, s.train_latent,
                                 device=env.device)
            return x.float(), t, [c.float() for c in ctx], target

        # model FLOPs (eager, no recomputation) of one sample; a step's FLOPs are linear in the batch
        flops_per_sample = self._train_flops(f"ours ({config})", lambda: fwd_bwd(*inputs(1)), params)
        for key, batch, ckpt, compiled, label in variants:
            batch_inputs = None
            try:
                model.enable_gradient_checkpointing(ckpt)
                if compiled:
                    budget = TRAIN_MEMORY_BUDGET if "budget" in key else None
                    model.set_compile("blocks", dynamic=self.dynamic, backend=self.compile_backend,
                                      memory_budget=budget, **self.compile_kwargs)
                else:
                    model.set_compile("none")
                batch_inputs = inputs(batch)
                if key.endswith("_graphs"):
                    step = self._graphed_step(model, params, batch_inputs)
                else:
                    def step():
                        opt.zero_grad(set_to_none=True)
                        fwd_bwd(*batch_inputs)
                        opt.step()

                flops = int(flops_per_sample * batch) if flops_per_sample else None
                note = "FLOPs without recomputation" if ckpt else ""
                self.measure(section, key, label, shape(batch, frames), step, flops, iters=args.iters,
                             need_s=90 if compiled else 20, notes=note,
                             extra={"batch": batch, "trainable_params": sum(p.numel() for p in params),
                                    "checkpointing": ckpt, "config": config})
            except Exception as exc:  # noqa: BLE001
                self.row(section, key, label, shape(batch, frames), error=error_text(exc))
            finally:
                del batch_inputs
                step = None  # a graphed step holds its graph's memory pool
                opt.zero_grad(set_to_none=True)
                env.free()
        model.set_compile("none")
        del model, opt, params
        env.free()
        torch._dynamo.reset()

    def e2e(self) -> None:
        s, env, args = self.s, self.env, self.args
        try:
            components = self._components()
        except Exception as exc:  # noqa: BLE001
            self.row("e2e", "e2e", "factorized pipeline", "", error=error_text(exc), trace=traceback.format_exc()[-2000:])
            return
        from emu_video.pipelines import TextToVideoPipeline

        pipe = TextToVideoPipeline(components)
        prompt = "a corgi running on a beach at sunset, waves in the background"
        shape = f"{s.e2e_frames} -> 65 frames, {s.e2e_size}px" if s.e2e_frames == 16 else f"{s.e2e_size}px"

        def run(steps: int):
            env.sync()
            t0 = time.perf_counter()
            out = pipe(prompt, seed=0, num_inference_steps=steps, interpolation_steps=steps, progress=False)
            env.sync()
            return time.perf_counter() - t0, out

        # warm-up: compiles and records every shape the pipeline uses (3 calls per shape)
        env.reset_peak()
        try:
            warm_s, out = run(3)
        except Exception as exc:  # noqa: BLE001
            self.row("e2e", "e2e_warm", "pipeline warm-up (3 steps)", shape, error=error_text(exc),
                     trace=traceback.format_exc()[-2000:])
            return
        self.row("e2e", "e2e_warm", "pipeline warm-up (3 steps: compiles, records graphs)", shape, wall_s=warm_s,
                 frames=list(out.frames.shape), **env.peak())
        env.free()
        per_step = self._e2e_per_step_estimate()
        timed: dict[int, float] = {}
        small = 5 if s.e2e_steps > 5 else 1
        reserve = 75.0 if "train" in self.sections and not self.args.cpu_smoke else 0.0  # kept for the train section
        # a short timed run: what a step costs, for extrapolation
        if self.budget.left() - reserve > 30:
            env.reset_peak()
            try:
                wall, out = run(small)
                timed[small] = wall
                self.row("e2e", f"e2e_{small}", f"pipeline, {small} steps", shape, wall_s=wall, **env.peak())
            except Exception as exc:  # noqa: BLE001
                self.row("e2e", f"e2e_{small}", f"pipeline, {small} steps", shape, error=error_text(exc))
        for steps in (s.e2e_steps, s.e2e_long_steps):
            est = self._e2e_estimate(steps, timed, per_step)
            fits = est is None or est * 1.15 + 10 < self.budget.left() - reserve
            if fits:
                env.free()
                env.reset_peak()
                try:
                    wall, out = run(steps)
                    timed[steps] = wall
                    flops = self._e2e_flops(steps)
                    self.row("e2e", f"e2e_{steps}", f"text -> 65-frame video, {steps} steps", shape, wall_s=wall,
                             frames=list(out.frames.shape), flops=flops,
                             tflops=flops / wall / 1e12 if flops else None, measured=True, **env.peak())
                    continue
                except Exception as exc:  # noqa: BLE001
                    self.row("e2e", f"e2e_{steps}", f"text -> 65-frame video, {steps} steps", shape,
                             error=error_text(exc), trace=traceback.format_exc()[-2000:])
                    continue
            est = self._e2e_estimate(steps, timed, per_step)
            if est is None:
                self.skip("e2e", f"e2e_{steps}", f"text -> 65-frame video, {steps} steps", "time budget, nothing to extrapolate from")
            else:
                self.row("e2e", f"e2e_{steps}", f"text -> 65-frame video, {steps} steps (EXTRAPOLATED)", shape,
                         wall_s=est, measured=False,
                         notes="extrapolated from measured runs / per-step times: did not fit the time budget")
        self._e2e_parts(components, reserve)
        del pipe, components
        self.paper_unet = None  # the train section wants the memory
        env.free()

    def _e2e_parts(self, components, reserve: float) -> None:
        """What the parts around the U-Net cost: the text encoders, and the VAE decoding 65 frames."""
        env, s = self.env, self.s
        if self.budget.left() - reserve < 20:
            return
        try:
            g = torch.Generator("cpu").manual_seed(0)
            latent = s.e2e_size // components.vae.downscale
            z = torch.randn(1, components.vae.latent_channels, 65, latent, latent, generator=g).to(env.device, env.dtype)
            for key, label, fn in (
                ("e2e_text", "text encoders, one prompt", lambda: components.encode_prompts(["a corgi on a beach"])),
                ("e2e_vae", f"VAE decode, 65 frames {s.e2e_size}px (chunks of {components.vae.chunk_size})",
                 lambda: components.vae.decode(z)),
            ):
                with torch.inference_mode():
                    self.measure("e2e", key, label, "", fn, None, warmup=1, iters=2, need_s=10)
        except Exception as exc:  # noqa: BLE001
            self.report.note(f"e2e part timings failed: {error_text(exc)}")

    def _e2e_flops(self, steps: int) -> int | None:
        rows = [self.report.find(k) for k in ("paper_t2i", "paper_16f", "paper_interp")]
        if any(r is None or not r.get("flops") for r in rows) or self.s.e2e_frames != 16:
            return None
        t2i, i2v, interp = (r["flops"] for r in rows)
        return int(steps * (t2i + i2v + 2 * interp))

    def _e2e_per_step_estimate(self) -> float | None:
        """Seconds per denoising step of the whole chain, from the paper section's optimised steps."""
        rows = [self.report.find(k) for k in ("paper_t2i", "paper_16f", "paper_interp")]
        if any(r is None for r in rows) or self.s.e2e_frames != 16:
            return None
        t2i, i2v, interp = (r["ms"] / 1e3 for r in rows)
        return t2i + i2v + 2 * interp

    def _e2e_estimate(self, steps: int, timed: dict[int, float], per_step: float | None) -> float | None:
        if len(timed) >= 2:  # a line through the two largest measured runs
            (a, ta), (b, tb) = sorted(timed.items())[-2:]
            slope = (tb - ta) / (b - a)
            return tb + slope * (steps - b)
        if len(timed) == 1:
            (a, ta), = timed.items()
            return ta + per_step * (steps - a) if per_step is not None else ta * steps / a
        if per_step is not None:
            return per_step * steps + 10.0
        return None

    def _components(self):
        """The paper-configuration pipeline parts with random weights, built in memory (no downloads)."""
        from diffusers import AutoencoderKL
        from transformers import CLIPTextConfig, CLIPTextModel, T5Config, T5EncoderModel

        from emu_video.diffusion import NoiseSchedule
        from emu_video.models.autoencoder import FrameAutoencoder
        from emu_video.models.text_encoder import TextEncoder
        from emu_video.models.unet import is_video_param
        from emu_video.pipelines.components import EmuVideoComponents, ModelIndex

        s, env, args = self.s, self.env, self.args
        tiny = s.ours_paper == "tiny"
        unet = self.paper_unet or build_ours(s.ours_paper, env)
        self.paper_unet = unet
        unet.reset_cuda_graphs()  # the paper section's graphs: recorded again, in the pipeline's memory
        if not self._paper_optimized:
            self._optimize(unet)
            self._paper_optimized = True
        dims = unet.config.context_dims
        with torch.device(env.device):
            if tiny:
                clip = CLIPTextModel(CLIPTextConfig(vocab_size=1000, hidden_size=dims[0], intermediate_size=2 * dims[0],
                                                    num_hidden_layers=1, num_attention_heads=2, max_position_embeddings=77,
                                                    pad_token_id=0, bos_token_id=1, eos_token_id=2))
                t5 = T5EncoderModel(T5Config(vocab_size=1000, d_model=dims[1], d_kv=8, d_ff=2 * dims[1], num_layers=1,
                                             num_heads=2, feed_forward_proj="gated-gelu"))
                vae = AutoencoderKL(in_channels=3, out_channels=3, down_block_types=("DownEncoderBlock2D",) * 2,
                                    up_block_types=("UpDecoderBlock2D",) * 2, block_out_channels=(8, 16),
                                    layers_per_block=1, latent_channels=unet.config.latent_channels, norm_num_groups=4)
            else:  # CLIP-L text tower, T5-XL encoder, the paper's autoencoder (App. Table 2)
                clip = CLIPTextModel(CLIPTextConfig(vocab_size=49408, hidden_size=768, intermediate_size=3072,
                                                    num_hidden_layers=12, num_attention_heads=12,
                                                    max_position_embeddings=77))
                t5 = T5EncoderModel(T5Config(vocab_size=32128, d_model=2048, d_kv=64, d_ff=5120, num_layers=24,
                                             num_heads=32, feed_forward_proj="gated-gelu"))
                vae = AutoencoderKL(in_channels=3, out_channels=3, down_block_types=("DownEncoderBlock2D",) * 4,
                                    up_block_types=("UpDecoderBlock2D",) * 4, block_out_channels=(128, 256, 512, 512),
                                    layers_per_block=2, latent_channels=8, norm_num_groups=32, sample_size=512)
        if (clip.config.hidden_size, t5.config.d_model) != tuple(dims):
            raise RuntimeError(f"text encoder widths {clip.config.hidden_size}, {t5.config.d_model} != U-Net contexts {dims}")
        clip = clip.to(env.dtype).eval()
        t5 = t5.to(env.dtype).eval()
        vae = vae.to(env.dtype).eval()
        encoders = [TextEncoder(HashTokenizer(clip.config.vocab_size), clip, max_length=s.text_len),
                    TextEncoder(HashTokenizer(t5.config.vocab_size), t5, max_length=s.text_len)]
        index = ModelIndex(
            text_encoders=[{"path": "clip"}, {"path": "t5"}],
            layouts={"first_frame": {"schedule": NoiseSchedule.stage_512().to_dict()},
                     "interpolation": {"weights": "interpolation", "schedule": NoiseSchedule.stage_512().to_dict()}},
            defaults={"steps": s.e2e_steps, "interpolation_steps": s.e2e_steps, "num_frames": s.e2e_frames,
                      "height": s.e2e_size, "width": s.e2e_size},
        )
        interp = {k: v.clone() for k, v in unet.state_dict().items() if is_video_param(k)}
        autoencoder = FrameAutoencoder(vae, chunk_size=8)
        if env.cuda and not args.no_vae_compile:  # as EmuVideoComponents.optimize_for_inference does on a GPU
            autoencoder.optimize_for_inference(compile=True)
        components = EmuVideoComponents(unet, autoencoder, encoders, index, {"interpolation": interp})
        self.report.meta["e2e_parts"] = {
            "unet_params": unet.parameter_counts()["total_params"],
            "clip_params": sum(p.numel() for p in clip.parameters()),
            "t5_params": sum(p.numel() for p in t5.parameters()),
            "vae_params": sum(p.numel() for p in vae.parameters()),
        }
        return components

# Summary ------------------------------------------------------------------------------------------------
def summarize(report: Report, shapes: Shapes) -> dict[str, Any]:
    out = report.summary
    peer = report.find("peer")
    best_key = out.get("ours_best")
    best = report.find(best_key) if best_key else None
    ceiling = report.find("matmul")
    if ceiling:
        out["matmul_tflops"] = ceiling["tflops"]
    if peer and best:
        out["unet_peer_ms"], out["unet_ours_ms"] = peer["ms"], best["ms"]
        out["unet_peer_tflops"], out["unet_ours_tflops"] = peer["tflops"], best["tflops"]
        out["unet_speedup"] = peer["ms"] / best["ms"]
        if peer.get("flops") and best.get("flops"):
            out["unet_flop_ratio_ours_over_peer"] = best["flops"] / peer["flops"]
            out["unet_tflops_ratio"] = best["tflops"] / peer["tflops"]
            out["target_unet_tflops_2x"] = out["unet_tflops_ratio"] >= 2.0
            # same shapes: our step, doing flop_ratio x the peer's work, is faster by at least that ratio
            out["target_unet_faster_at_same_shapes"] = out["unet_speedup"] >= out["unet_flop_ratio_ours_over_peer"]
    if peer and peer.get("tflops"):
        # the paper U-Net's optimised steps against the same peer and ceiling (TFLOP/s ratio, share of matmul)
        for key in ("paper_interp", *(f"paper_{f}f" for f in sorted(shapes.paper_frames, reverse=True))):
            r = report.find(key)
            if r and r.get("tflops"):
                out[f"{key}_tflops_ratio"] = r["tflops"] / peer["tflops"]
                if ceiling and ceiling.get("tflops"):
                    out[f"{key}_ceiling_share"] = r["tflops"] / ceiling["tflops"]
    tpeer = report.find("train_peer")
    tours = [report.find(k) for k in ("train_ours", "train_ours_compiled", "train_ours_compiled_graphs", "train_ours_2x",
                                      "train_ours_2x_ckpt", "train_ours_2x_budget_compiled",
                                      "train_ours_2x_budget_compiled_graphs", "train_ours_2x_ckpt_compiled")]
    tours = [r for r in tours if r is not None and r.get("tflops")]
    if tpeer and tpeer.get("tflops") and tours:
        tbest = max(tours, key=lambda r: r["tflops"])
        out["train_peer_tflops"], out["train_ours_tflops"] = tpeer["tflops"], tbest["tflops"]
        out["train_tflops_ratio"] = tbest["tflops"] / tpeer["tflops"]
        out["target_train_tflops_2x"] = out["train_tflops_ratio"] >= 2.0
        out["train_peer_peak_gib"] = tpeer["peak_alloc_gib"]
    for steps in (shapes.e2e_steps, shapes.e2e_long_steps):
        r = report.find(f"e2e_{steps}")
        if r:
            out[f"e2e_{steps}_s"] = r["wall_s"]
            out[f"e2e_{steps}_measured"] = r.get("measured", False)
            if r.get("peak_reserved_gib") is not None:
                out[f"e2e_{steps}_peak_reserved_gib"] = r["peak_reserved_gib"]
                out[f"e2e_{steps}_peak_alloc_gib"] = r["peak_alloc_gib"]
    r = report.find(f"e2e_{shapes.e2e_steps}")
    if r and r.get("measured"):
        out["target_e2e_120s"] = r["wall_s"] <= 120.0
        if r.get("peak_reserved_gib") is not None:
            out["target_e2e_40gb"] = r["peak_reserved_gib"] * GiB / 1e9 <= 40.0
    return out


# Main ---------------------------------------------------------------------------------------------------
def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", type=Path, default=Path("bench_results.json"), help="JSON results (written as it goes)")
    p.add_argument("--markdown", type=Path, default=None, help="also write the table as Markdown here")
    p.add_argument("--sections", default=",".join(SECTIONS), help=f"comma-separated subset of {','.join(SECTIONS)}")
    p.add_argument("--append", action="store_true",
                   help="merge into an existing --out file: its rows of other sections are kept")
    p.add_argument("--quick", action="store_true", help="fewer iterations and variants")
    p.add_argument("--train-rows", default="",
                   help="comma-separated subset of our training rows (train_ours, train_ours_2x, train_ours_2x_ckpt, "
                        "train_ours_compiled, train_ours_compiled_graphs, train_ours_2x_budget_compiled, "
                        "train_ours_2x_budget_compiled_graphs, train_paper, "
                        "train_ours_2x_ckpt_compiled); "
                        "the peer's row always runs")
    p.add_argument("--cpu-smoke", action="store_true", help="tiny shapes on the CPU (checks the script runs)")
    p.add_argument("--budget-s", type=float, default=None, help="wall-clock budget for the whole run (default 480)")
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--iters", type=int, default=None, help="timed steps per measurement (default 8; quick 4)")
    p.add_argument("--max-measure-s", type=float, default=20.0, help="cap on the timed part of one measurement")
    p.add_argument("--compile", choices=("blocks", "full", "none"), default=None,
                   help="torch.compile mode for our U-Net (default blocks; cpu-smoke: none)")
    p.add_argument("--compile-backend", default=None, help="torch.compile backend (default inductor)")
    p.add_argument("--dynamic", choices=("auto", "static", "dynamic"), default="static",
                   help="torch.compile shape handling: static (each shape compiled on its own: the library's "
                        "default), auto (static, then dynamic on a new shape), dynamic")
    p.add_argument("--inductor-mode", default="default", choices=("default", "max-autotune-no-cudagraphs"),
                   help="torch.compile mode (max-autotune tunes GEMM/conv kernels: much longer compiles)")
    p.add_argument("--tune-kernels", action="store_true",
                   help="tune inductor's generated Triton kernels (VideoUNet.set_compile(tune_kernels=True), as "
                        "`emu-video generate --optimize --tune-kernels` does): slightly faster steps, much longer compiles")
    p.add_argument("--sdpa", default="default", choices=("default", "cudnn", "flash", "efficient"),
                   help="prefer one SDPA attention backend for the whole run (ours and the peer)")
    p.add_argument("--no-cuda-graphs", action="store_true")
    p.add_argument("--compile-image-model", action="store_true",
                   help="also compile the text-to-image path (2 passes x 1 frame; by default it runs eagerly under "
                        "CUDA graphs, which saves compile time for a small share of the work)")
    p.add_argument("--no-vae-compile", action="store_true",
                   help="e2e: run the autoencoder eagerly instead of compiled on channels-last frames")
    p.add_argument("--no-profile", dest="profile", action="store_false",
                   help="skip the per-kernel profile of one U-Net step (ours and the peer)")
    p.add_argument("--peer-compile", action="store_true", help="also time the peer under torch.compile")
    p.add_argument("--dtype", default="bfloat16", choices=("bfloat16", "float16", "float32"))
    args = p.parse_args(argv)
    if args.budget_s is None:
        args.budget_s = 480.0 if not args.cpu_smoke else 1800.0
    if args.iters is None:
        args.iters = 4 if (args.quick or args.cpu_smoke) else 8
    if args.compile is None:
        args.compile = "none" if args.cpu_smoke else "blocks"
    if args.compile_backend is None:
        args.compile_backend = "inductor"
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    sections = [x.strip() for x in args.sections.split(",") if x.strip()]
    unknown = [x for x in sections if x not in SECTIONS]
    if unknown:
        print(f"unknown sections: {unknown}; choose from {SECTIONS}", file=sys.stderr)
        return 2
    if args.cpu_smoke:
        device, shapes = "cpu", smoke_shapes()
    else:
        if not torch.cuda.is_available():
            print("no CUDA device: use --cpu-smoke for a tiny run on the CPU", file=sys.stderr)
            return 2
        device, shapes = "cuda", Shapes()
        torch.backends.cudnn.benchmark = True
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
    dtype = getattr(torch, args.dtype)
    env = Env(device, dtype)
    try:
        from emu_video.models._quiet import quiet_libraries

        quiet_libraries()
    except Exception:  # noqa: BLE001 - only cosmetic
        pass
    try:
        import diffusers

        diffusers_version = diffusers.__version__
    except Exception as exc:  # noqa: BLE001 - the peer rows will report the error
        diffusers_version = f"not importable: {error_text(exc)}"
    try:
        import transformers

        transformers_version = transformers.__version__
    except Exception as exc:  # noqa: BLE001
        transformers_version = f"not importable: {error_text(exc)}"
    meta = {
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "command": "python " + " ".join([str(Path(sys.argv[0]).as_posix())] + sys.argv[1:]),
        "device": torch.cuda.get_device_name() if env.cuda else platform.processor() or "cpu",
        "torch": torch.__version__,
        "cuda": torch.version.cuda,
        "diffusers": diffusers_version,
        "transformers": transformers_version,
        "python": platform.python_version(),
        "dtype": args.dtype,
        "compile": args.compile,
        "compile_backend": args.compile_backend,
        "compile_image_model": args.compile_image_model,
        "vae_compiled": env.cuda and not args.no_vae_compile,
        "inductor_mode": args.inductor_mode,
        "tune_kernels": args.tune_kernels,
        "sdpa": args.sdpa,
        "dynamic": args.dynamic,
        "cuda_graphs": env.cuda and not args.no_cuda_graphs,
        "budget_s": args.budget_s,
        "cpu_smoke": args.cpu_smoke,  # tiny shapes: checks the script, its numbers mean nothing
        "shapes": shapes.__dict__,
    }
    if env.cuda:
        props = torch.cuda.get_device_properties(0)
        meta["gpu_memory_gib"] = props.total_memory / GiB
    args.out.parent.mkdir(parents=True, exist_ok=True)
    report = Report(args.out, meta)
    if args.append and args.out.exists():
        # rows of the sections not run now are kept; summary and table cover both runs
        old = json.loads(args.out.read_text())
        report.rows = [r for r in old.get("rows", []) if r.get("section") not in sections]
        report.notes = list(old.get("notes", []))
        prev = dict(old.get("meta", {}))
        report.meta["previous_runs"] = prev.pop("previous_runs", []) + [
            {k: prev.get(k) for k in ("date", "command", "device", "total_seconds", "section_seconds")}]
        for k in ("peer_params", "profiles", "e2e_parts") + tuple(k for k in prev if k.startswith("ours_")):
            if k in prev and k not in report.meta:
                report.meta[k] = prev[k]
    print(f"# Emu Video U-Net benchmark  {meta['date']}  {meta['device']}  torch {meta['torch']}  "
          f"diffusers {diffusers_version}", flush=True)
    bench = Bench(args, env, shapes, report)
    bench.sections = sections
    for name in SECTIONS:
        if name not in sections:
            continue
        t0 = time.perf_counter()
        if name == "train":
            torch._dynamo.reset()  # compiled code of the paper U-Net holds on to nothing after this
        env.free()
        if env.cuda:
            report.meta.setdefault("allocated_gib_at_section_start", {})[name] = round(torch.cuda.memory_allocated() / GiB, 2)
        print(f"\n## {name}  ({bench.budget.left():.0f} s of budget left)", flush=True)
        try:
            with sdpa_context(args.sdpa):
                getattr(bench, name)()
        except Exception as exc:  # noqa: BLE001 - a section that fails outright is reported, the rest runs
            report.add({"section": name, "key": name, "name": f"section {name}", "error": error_text(exc),
                        "trace": traceback.format_exc()[-2000:]})
        report.meta.setdefault("section_seconds", {})[name] = round(time.perf_counter() - t0, 1)
        env.free()
    report.meta["total_seconds"] = round(bench.budget.elapsed(), 1)
    summarize(report, shapes)
    report.save()
    table = markdown_table(report)
    print("\n" + table)
    print("summary:", json.dumps(report.summary, indent=2, default=str))
    if args.markdown:
        args.markdown.parent.mkdir(parents=True, exist_ok=True)
        commands = [r.get("command") for r in report.meta.get("previous_runs", [])] + [meta["command"]]
        header = (f"Measured {meta['date']} on {meta['device']} (torch {meta['torch']}, CUDA {meta['cuda']}, "
                  f"diffusers {diffusers_version}), {args.dtype}, with: " + "; ".join(f"`{c}`" for c in commands if c)
                  + ".\n\n")
        args.markdown.write_text(header + table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
