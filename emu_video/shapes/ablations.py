"""The paper's ablations (Table 1) on Shapes World: which arms exist, and how each is trained with equal compute.

Each comparison has two arms; an arm is one or more training stages (config files in
`configs/stages/ablations/`), each started from the one before, the first from the base model (the default
model: its spatial text-to-image weights and autoencoder). The arms of a comparison train with the same
budget: the same steps x batch over the same data stream and seeds (comparisons a to c), or the same training
minutes (d, whose arms train at different resolutions). Training runs as `emu-video train` processes of at
most `run_minutes` each, resuming from checkpoints, in lockstep: the second arm never runs ahead of the first,
so a session that stops anywhere leaves both arms at (nearly) the same budget, and the next one goes on.
Every run's steps, batch and minutes are appended to ARM/compute.jsonl.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from emu_video.errors import UserError

# Steps are counted in the stage's own steps; "minutes" budgets compare trained minutes (checkpoint clocks).
BUDGET_KINDS = ("steps", "minutes")
# A stage budgeted in minutes counts as done within this many minutes of its share (runs stop a little early).
MINUTES_SLACK = 0.25


@dataclass(frozen=True)
class Stage:
    config: str  # file name in the ablation config folder
    share: float = 1.0  # share of the arm's budget


@dataclass(frozen=True)
class Arm:
    run: str  # folder under the runs root; arms with the same run are trained once and shared
    stages: tuple[Stage, ...]
    direct: bool = False  # sampled without a first frame (the `direct` layout)


@dataclass(frozen=True)
class Comparison:
    key: str
    name: str
    choice: Arm  # the paper's design choice: its win rate is reported
    baseline: Arm
    choice_label: str
    baseline_label: str
    budget: str  # steps | minutes
    paper_quality: float  # paper Table 1: human win rate (%) of the design choice
    paper_faithfulness: float
    note: str = ""

    @property
    def arms(self) -> tuple[Arm, Arm]:
        return (self.choice, self.baseline)


FACTORIZED = Arm("factorized", (Stage("factorized.toml"),))
COMPARISONS: dict[str, Comparison] = {c.key: c for c in (
    Comparison("a", "factorized_vs_direct", FACTORIZED, Arm("direct", (Stage("direct.toml"),), direct=True),
               "factorized (image, then video)", "direct text-to-video", "steps", 70.5, 63.3,
               "same spatial weights, clips, steps and trainable temporal layers; F's first frame is drawn by "
               "the text-to-image model"),
    Comparison("b", "zero_snr_vs_quad", FACTORIZED, Arm("quad", (Stage("quad.toml"),)),
               "zero terminal SNR", "plain quad schedule", "steps", 96.8, 88.3,
               "v-prediction in both; only F's schedule differs (the first frame is drawn the same way)"),
    Comparison("c", "frozen_vs_trained_spatial", FACTORIZED, Arm("trained_spatial", (Stage("trained_spatial.toml"),)),
               "frozen spatial layers", "spatial layers trained too", "steps", 55.0, 58.1,
               "the trained arm's first frame comes from its own, fine-tuned spatial weights"),
    Comparison("d", "multistage_vs_single", Arm("multistage", (Stage("multistage_64.toml", 0.3),
                                                               Stage("multistage_128.toml", 0.7))),
               Arm("single_stage", (Stage("factorized.toml"),)),
               "64 px then 128 px", "128 px only", "minutes", 81.8, 84.1,
               "equal training minutes (a 64 px step is cheaper than a 128 px one)"),
)}


def comparison(key: str) -> Comparison:
    for c in COMPARISONS.values():
        if key in (c.key, c.name):
            return c
    raise UserError(f"no comparison {key!r}; choose one of: "
                    + ", ".join(f"{c.key} ({c.name})" for c in COMPARISONS.values()))


# Progress of a training run, read from its checkpoints ------------------------------------------------------
def stage_dir(runs: Path, arm: Arm, index: int) -> Path:
    return Path(runs) / arm.run / Path(arm.stages[index].config).stem


def checkpoint_state(out_dir: Path) -> dict:
    """The newest checkpoint's state (step, elapsed_seconds, ...) of a training output folder; {} if none."""
    latest = Path(out_dir) / "checkpoints" / "latest"
    if not latest.is_file():
        return {}
    path = latest.parent / latest.read_text().strip() / "state.json"
    return json.loads(path.read_text()) if path.is_file() else {}


def stage_targets(arm: Arm, budget: float) -> list[float]:
    """Each stage's share of the budget (steps rounded to whole steps), in the budget's unit."""
    total = sum(s.share for s in arm.stages)
    return [s.share / total * budget for s in arm.stages]


def stage_progress(runs: Path, arm: Arm, kind: str) -> list[float]:
    """Steps (or trained minutes) done in each stage of an arm."""
    out = []
    for k in range(len(arm.stages)):
        state = checkpoint_state(stage_dir(runs, arm, k))
        out.append(float(state.get("step", 0)) if kind == "steps" else float(state.get("elapsed_seconds", 0.0)) / 60)
    return out


def arm_progress(runs: Path, arm: Arm, kind: str) -> float:
    return sum(stage_progress(runs, arm, kind))


def _stage_done(done: float, target: float, kind: str) -> bool:
    return done >= (round(target) if kind == "steps" else target - MINUTES_SLACK)


# Training ---------------------------------------------------------------------------------------------------
Runner = Callable[[list[str]], int]


def subprocess_runner(args: list[str]) -> int:
    """Run `emu-video ARGS` in a new Python process (a fresh CUDA context and data workers every run)."""
    return subprocess.run([sys.executable, "-m", "emu_video.cli.main", *args]).returncode


def in_process_runner(args: list[str]) -> int:
    from emu_video.cli.main import main

    return int(main(args) or 0)


def device_name() -> str:
    try:
        import torch

        if torch.cuda.is_available():
            return torch.cuda.get_device_name()
    except Exception:  # noqa: BLE001 - the name is only recorded
        pass
    import platform

    return f"CPU ({platform.processor() or platform.machine()})"


@dataclass
class TrainPlan:
    config_dir: Path
    runs: Path
    base_model: Path
    budget: float  # steps (total over the arm's stages) or minutes
    run_minutes: float = 9.0  # at most this long per `emu-video train` run
    overrides: Sequence[str] = ()  # key=value for every run (e.g. train.batch_size=64)
    runner: Runner = subprocess_runner


def _one_run(plan: TrainPlan, comp: Comparison, arm: Arm, index: int, goal: float, minutes: float) -> dict:
    """One `emu-video train` run of stage `index` of `arm`, towards `goal` (steps or trained minutes of this
    stage) for at most `minutes`. Returns the run's record (also appended to ARM/compute.jsonl)."""
    stage = arm.stages[index]
    config = Path(plan.config_dir) / stage.config
    if not config.is_file():
        raise UserError(f"no ablation config {config}")
    out = stage_dir(plan.runs, arm, index)
    init = Path(plan.base_model) if index == 0 else stage_dir(plan.runs, arm, index - 1) / "model"
    before = checkpoint_state(out)
    args = ["train", "--config", str(config), *plan.overrides, f"train.output_dir={json.dumps(str(out))}",
            f"model.init={json.dumps(str(init))}"]
    if comp.budget == "steps":
        args += [f"train.max_steps={int(round(goal))}", f"train.max_minutes={minutes:.3f}"]
    else:
        trained = float(before.get("elapsed_seconds", 0.0)) / 60
        args += [f"train.max_minutes={min(minutes, goal - trained):.3f}"]
    t0 = time.monotonic()
    code = plan.runner(args)
    wall = time.monotonic() - t0
    if code != 0:
        raise UserError(f"training {arm.run}/{config.stem} stopped with exit code {code} (see its log above)")
    after = checkpoint_state(out)
    cfg = after.get("config", {})
    record = {
        "comparison": comp.name, "arm": arm.run, "stage": config.stem, "device": device_name(),
        "steps_before": int(before.get("step", 0)), "steps_after": int(after.get("step", 0)),
        "batch": int(cfg.get("train", {}).get("batch_size", 0)) * int(cfg.get("train", {}).get("grad_accum", 1)),
        "resolution": int(cfg.get("data", {}).get("resolution", 0)),
        "train_minutes_before": float(before.get("elapsed_seconds", 0.0)) / 60,
        "train_minutes_after": float(after.get("elapsed_seconds", 0.0)) / 60,
        "wall_minutes": wall / 60, "finished_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    log = Path(plan.runs) / arm.run / "compute.jsonl"
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "a", encoding="utf-8") as fh:
        fh.write(json.dumps(record) + "\n")
    return record


def train_comparison(plan: TrainPlan, comp: Comparison, session_minutes: float = 0.0,
                     log: Callable[[str], None] = print) -> bool:
    """Train both arms of `comp` towards the plan's budget in lockstep, in runs of at most plan.run_minutes,
    for at most `session_minutes` of wall time (0: until done). Returns True when both arms are done."""
    start = time.monotonic()
    kind = comp.budget
    if kind not in BUDGET_KINDS:
        raise UserError(f"budget kind {kind!r}: one of {', '.join(BUDGET_KINDS)}")

    def left() -> float:
        return float("inf") if session_minutes <= 0 else session_minutes - (time.monotonic() - start) / 60

    while True:
        lead = None  # how far the first arm is (the second arm goes no further)
        moved = False
        for arm in comp.arms:
            targets = stage_targets(arm, plan.budget)
            cap = plan.budget if lead is None else min(plan.budget, lead)
            done = stage_progress(plan.runs, arm, kind)
            for k, target in enumerate(targets):
                if _stage_done(done[k], target, kind):
                    continue
                goal = min(target, cap - sum(targets[:k]))  # this stage's own steps / minutes, this round
                if goal <= 0 or _stage_done(done[k], goal, kind):
                    break  # the second arm waits for the first
                minutes = min(plan.run_minutes, left())
                if minutes < 1.0:
                    log(f"{comp.name}: session time is up; run again to go on")
                    return False
                log(f"{comp.name}: {arm.run}/{Path(arm.stages[k].config).stem} from {done[k]:.1f} towards "
                    f"{goal:.1f} {kind} (a run of at most {minutes:.1f} min)")
                rec = _one_run(plan, comp, arm, k, goal, minutes)
                moved = moved or rec["steps_after"] > rec["steps_before"]
                break  # one run per arm per round: the other arm catches up
            if lead is None:
                lead = arm_progress(plan.runs, arm, kind)
        finished = all(_stage_done(d, t, kind) for arm in comp.arms
                       for d, t in zip(stage_progress(plan.runs, arm, kind), stage_targets(arm, plan.budget)))
        if finished:
            log(f"{comp.name}: both arms trained ({plan.budget:g} {kind} each)")
            return True
        if not moved:
            raise UserError(f"{comp.name}: a training round made no progress (is train.max_steps in the config "
                            "below the budget, or the run time too short for one step?)")


def arm_model(runs: Path, arm: Arm) -> Path:
    """The trained model folder of an arm (its last stage's OUTPUT/model)."""
    folder = stage_dir(runs, arm, len(arm.stages) - 1) / "model"
    if not (folder / "model_index.json").is_file():
        raise UserError(f"arm {arm.run} has no trained model at {folder}: train it first (scripts/ablations.py "
                        "train)")
    return folder


def compute_summary(runs: Path, arm: Arm) -> dict:
    """Per stage: steps x batch, trained and wall minutes, runs and devices (from ARM/compute.jsonl)."""
    path = Path(runs) / arm.run / "compute.jsonl"
    records = [json.loads(line) for line in path.read_text().splitlines() if line.strip()] if path.is_file() else []
    stages = []
    for k, stage in enumerate(arm.stages):
        name = Path(stage.config).stem
        mine = [r for r in records if r["stage"] == name]
        state = checkpoint_state(stage_dir(runs, arm, k))
        cfg = state.get("config", {}).get("train", {})
        last = mine[-1] if mine else {}  # the run records, where the checkpoints are not at hand
        stages.append({
            "stage": name, "steps": int(state.get("step", last.get("steps_after", 0))),
            "batch": int(cfg.get("batch_size", 0)) * int(cfg.get("grad_accum", 1)) if cfg else last.get("batch", 0),
            "resolution": int(state.get("config", {}).get("data", {}).get("resolution", last.get("resolution", 0))),
            "train_minutes": round(float(state.get("elapsed_seconds", 60 * last.get("train_minutes_after", 0.0))) / 60, 3),
            "wall_minutes": round(sum(r["wall_minutes"] for r in mine), 3), "runs": len(mine),
            "devices": sorted({r["device"] for r in mine}),
        })
    return {"arm": arm.run, "stages": stages,
            "samples": sum(s["steps"] * s["batch"] for s in stages),
            "train_minutes": round(sum(s["train_minutes"] for s in stages), 3)}
