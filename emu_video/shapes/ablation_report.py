"""An ablation's results: results.json and a table per comparison, the win-rate plot, and the packaged
evaluation videos (both arms' clips under identical names, prompts.jsonl, results.json)."""

from __future__ import annotations

import datetime as dt
import json
import shutil
from pathlib import Path

from emu_video.errors import UserError
from emu_video.shapes.ablation_eval import SETS, arm_reports, compare_arms
from emu_video.shapes.ablations import Comparison, compute_summary


def _pct(x) -> str:
    return "  -  " if x is None else f"{100 * x:5.1f}"


def _ci(ci) -> str:
    return "" if ci is None or ci[0] is None else f"[{100 * ci[0]:.1f}, {100 * ci[1]:.1f}]"


def format_table(res: dict) -> str:
    """Per set: each arm's faithful rate, the paired win rates of the design choice, and the quality proxy."""
    c = res["comparison"]
    lines = [f"{c['name']}: {c['choice_label']} (A) vs {c['baseline_label']} (B); paper Table 1, A's human win "
             f"rate: quality {c['paper_quality']} %, faithfulness {c['paper_faithfulness']} %",
             f"{'set':13} {'items':>5}  {'A faithful':>22}  {'B faithful':>22}  {'A wins faithfulness':>36}  "
             f"{'A wins quality':>36}  {'A / B flicker-free':>13}"]
    for name, s in res["sets"].items():
        fa, fb = s["choice"]["faithful"], s["baseline"]["faithful"]
        wf, wq = s["win_faithfulness"], s["win_quality"]
        lines.append(
            f"{name:13} {s['items']:5d}  {_pct(fa['rate'])} {_ci(fa['ci95']):>16}  {_pct(fb['rate'])} "
            f"{_ci(fb['ci95']):>16}  {_pct(wf['win_rate'])} {_ci(wf['win_rate_ci95']):>14} "
            f"{wf['wins']:3d}/{wf['losses']:3d}/{wf['ties']:3d}  {_pct(wq['win_rate'])} "
            f"{_ci(wq['win_rate_ci95']):>14} {wq['wins']:3d}/{wq['losses']:3d}/{wq['ties']:3d}  "
            f"{_pct(s['choice']['quality']['flicker_free']['rate'])} / "
            f"{_pct(s['baseline']['quality']['flicker_free']['rate'])}")
    lines.append("(percent with 95 % intervals; win rate = wins / (wins + losses), Wilson; wins/losses/ties)")
    return "\n".join(lines)


def write_report(comp: Comparison, eval_dir: Path, runs: Path, label: str = "") -> dict:
    """Pair the two arms' judged clips under eval_dir/ARM and write eval_dir/results.json."""
    choice, baseline = (arm_reports(Path(eval_dir) / arm.run) for arm in comp.arms)
    if not choice or not baseline:
        raise UserError(f"{comp.name}: no judged clips under {eval_dir} for both arms; run `evaluate` first")
    res = {
        "comparison": {"key": comp.key, "name": comp.name, "choice": comp.choice.run, "baseline": comp.baseline.run,
                       "choice_label": comp.choice_label, "baseline_label": comp.baseline_label,
                       "budget": comp.budget, "paper_quality": comp.paper_quality,
                       "paper_faithfulness": comp.paper_faithfulness, "note": comp.note},
        "label": label,
        "compute": {arm.run: compute_summary(runs, arm) for arm in comp.arms},
        "frames": sorted({(r["num_frames"], r["size"]) for r in [*choice.values(), *baseline.values()]}),
        "sets": compare_arms(choice, baseline, SETS),
        "generated_at": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
    }
    res["table"] = format_table(res)
    Path(eval_dir).mkdir(parents=True, exist_ok=True)
    (Path(eval_dir) / "results.json").write_text(json.dumps(res, indent=1) + "\n", encoding="utf-8")
    return res


def plot_win_rates(results: list[dict], out: Path, label: str = "") -> Path:
    """Bars of the design choices' paired win rates (faithfulness, quality proxy) per set, with 95 % Wilson
    intervals, and the paper's human win rates as markers."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(results), figsize=(5.2 * len(results), 3.8), squeeze=False)
    for ax, res in zip(axes[0], results):
        c = res["comparison"]
        names = [n for n in res["sets"] if n != "all"] + ["all"]
        width = 0.38
        for j, (key, paper, colour) in enumerate((("win_faithfulness", c["paper_faithfulness"], "#3b75af"),
                                                  ("win_quality", c["paper_quality"], "#ef8636"))):
            xs, ys, lo, hi = [], [], [], []
            for i, n in enumerate(names):
                w = res["sets"][n][key]
                if w["win_rate"] is None:
                    continue
                xs.append(i + (j - 0.5) * width)
                ys.append(100 * w["win_rate"])
                lo.append(100 * (w["win_rate"] - w["win_rate_ci95"][0]))
                hi.append(100 * (w["win_rate_ci95"][1] - w["win_rate"]))
            what = "faithfulness" if key == "win_faithfulness" else "quality proxy"
            ax.bar(xs, ys, width, yerr=[lo, hi], capsize=3, color=colour, label=f"ours: {what}")
            ax.axhline(paper, color=colour, linestyle="--", linewidth=1, label=f"paper (human): {paper:g} %")
        ax.axhline(50, color="gray", linewidth=0.8)
        ax.set_xticks(range(len(names)), names, fontsize=8)
        ax.set_ylim(0, 100)
        ax.set_ylabel(f"win rate of {c['choice_label']} (%)", fontsize=8)
        ax.set_title(f"{c['key']}: {c['choice_label']} vs {c['baseline_label']}", fontsize=9)
        ax.legend(fontsize=7, loc="lower right")
    fig.suptitle(f"Shapes World ablations: paired win rates, 95 % Wilson intervals (ties left out)\n{label}",
                 fontsize=9)
    fig.tight_layout()
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return out


def _video_file(arm_dir: Path, name: str) -> Path | None:
    for cand in (arm_dir / "videos" / name, (arm_dir / "videos" / name).with_suffix(".webp")):
        if cand.is_file():
            return cand
    return None


def package_videos(comp: Comparison, eval_dir: Path, dest: Path, max_items: int = 0, crf: int = 28) -> Path:
    """dest/ARM/NAME.mp4 for both arms (identical names; H.264, re-encoded at `crf` from the kept clips),
    dest/prompts.jsonl (one line per name: file, prompt, seed, set) and dest/results.json (each arm's faithful
    rate per set as the judge scored the generated frames, and as it scores the packaged files)."""
    from emu_video.io.video import read_video, write_video
    from emu_video.shapes.ablation_eval import arm_summary, clip_scores
    from emu_video.shapes.ablation_media import read_webp
    from emu_video.shapes.judge import judge

    eval_dir, dest = Path(eval_dir), Path(dest)
    reports = [arm_reports(eval_dir / arm.run) for arm in comp.arms]
    names = sorted(n for n in set(reports[0]) & set(reports[1])
                   if all(_video_file(eval_dir / arm.run, n) for arm in comp.arms))
    if max_items:
        names = names[:max_items]
    if not names:
        raise UserError(f"{comp.name}: no clip kept by both arms under {eval_dir} (evaluate with --save)")
    if dest.exists():
        shutil.rmtree(dest)
    rejudged = {}
    for arm, reps in zip(comp.arms, reports):
        rows = []
        for n in names:
            src = _video_file(eval_dir / arm.run, n)
            if src.suffix == ".webp":
                frames, _ = read_webp(src)
            else:
                frames = read_video(src).frames
            fps = reps[n].get("fps", 16.0)
            write_video(dest / arm.run / n, frames, fps, crf=crf)
            back = read_video(dest / arm.run / n).frames
            rows.append({**reps[n], **clip_scores(judge(back, reps[n]["prompt"], fps=fps))})
        rejudged[arm.run] = rows
    with open(dest / "prompts.jsonl", "w", encoding="utf-8") as fh:
        for n in names:
            r = reports[0][n]
            fh.write(json.dumps({"file": n, "prompt": r["prompt"], "seed": r["seed"], "set": r["set"]}) + "\n")

    def per_set(rows):
        out = {}
        for s in [*SETS, "all"]:
            mine = [r for r in rows if s == "all" or r["set"] == s]
            if mine:
                f = arm_summary(mine)["faithful"]
                out[s] = {"clips": f["n"], "faithful": f["rate"], "faithful_ci95": f["ci95"]}
        return out

    results = {"comparison": comp.name, "files_per_arm": len(names),
               "judged_generated_frames": {arm.run: per_set([reps[n] for n in names])
                                           for arm, reps in zip(comp.arms, reports)},
               "judged_packaged_files": {arm: per_set(rows) for arm, rows in rejudged.items()},
               "h264_crf": crf}
    (dest / "results.json").write_text(json.dumps(results, indent=1) + "\n", encoding="utf-8")
    return dest
