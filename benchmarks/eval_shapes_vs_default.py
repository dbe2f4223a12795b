"""Weight-free metrics, the Shapes World judge and a smoke-test FVD between Shapes World renders and the default
model's videos, through `emu-video evaluate`.

    python benchmarks/eval_shapes_vs_default.py --work /tmp/eval-shapes --videos 12 \
        --out benchmarks/results/eval-shapes-vs-default.json

Real: the ground-truth renders of the first N prompts of the `eval-seen` set (128x128, 65 frames, 16 fps).
Fake: the default model's videos of the same prompts and seeds (`emu-video generate`; existing files are kept,
so an interrupted run resumes). The FVD here uses an I3D with RANDOM weights (He-initialised, seed 0): it only
shows the pipeline runs end to end on real files; it is not a quality number. Flicker, motion, motion vectors
and the judge need no weights and are real measurements.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

import torch
from tqdm import tqdm

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from emu_video.io.video import write_video  # noqa: E402
from emu_video.shapes.evalsets import load_eval_set  # noqa: E402
from emu_video.shapes.grammar import scene_from_prompt  # noqa: E402
from emu_video.shapes.palette import FPS  # noqa: E402
from emu_video.shapes.render import render  # noqa: E402


def random_i3d(path: Path) -> Path:
    from emu_video.evaluation.i3d import InceptionI3d

    torch.manual_seed(0)
    model = InceptionI3d()
    for m in model.modules():
        if isinstance(m, torch.nn.Conv3d):
            torch.nn.init.kaiming_normal_(m.weight, nonlinearity="relu")
    torch.save(model.state_dict(), path)
    return path


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--work", type=Path, required=True, help="folder for the videos (resumable)")
    ap.add_argument("--videos", type=int, default=12)
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks/results/eval-shapes-vs-default.json")
    ap.add_argument("--metrics", default="fvd,flicker,motion,motion_vectors,judge")
    args = ap.parse_args()

    items = list(load_eval_set("eval-seen"))[: args.videos]
    real, fake = args.work / "shapes_render", args.work / "default_model"
    real.mkdir(parents=True, exist_ok=True)
    fake.mkdir(parents=True, exist_ok=True)
    lines = []
    for i, item in enumerate(tqdm(items, desc="render + generate", unit="video")):
        name = f"{i:04d}.mp4"
        lines.append(json.dumps({"file": name, "prompt": item.prompt}))
        if not (real / name).exists():
            write_video(real / name, render(scene_from_prompt(item.prompt, item.seed)), FPS)
        if not (fake / name).exists():
            subprocess.run([sys.executable, "-m", "emu_video.cli.main", "generate", item.prompt, "--seed",
                            str(item.seed), "--out", str(fake / name), "--quiet"], check=True, cwd=ROOT)
    prompts = args.work / "prompts.jsonl"
    prompts.write_text("\n".join(lines) + "\n", encoding="utf-8")
    i3d = random_i3d(args.work / "i3d_random_weights.pt")
    cmd = [sys.executable, "-m", "emu_video.cli.main", "evaluate", "--real", str(real), "--fake", str(fake),
           "--metrics", args.metrics, "--i3d", str(i3d), "--prompts", str(prompts), "--out", str(args.out)]
    print(" ".join(cmd[1:]))
    subprocess.run(cmd, check=True, cwd=ROOT)
    report = json.loads(args.out.read_text())
    report["note"] = ("FVD uses an I3D with random weights (smoke test only, not comparable with any published "
                      "FVD). Real: Shapes World renders of eval-seen; fake: the default model, same prompts/seeds.")
    report["command"] = f"python benchmarks/eval_shapes_vs_default.py --work WORK --videos {args.videos}"
    args.out.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
