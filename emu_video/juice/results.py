"""Results of a JUICE study: majority per pair, win rates with 95 % Wilson intervals, agreement, Fleiss' kappa,
reasons per side; exported as CSV and JSON, plotted as a PNG.

Only pairs with all their votes (five by default) count towards win rates, agreement, kappa and reasons;
pairs still collecting votes are listed as incomplete.
"""

from __future__ import annotations

import csv
import datetime as dt
import json
import os
from collections import defaultdict
from pathlib import Path

from emu_video.juice.protocol import (
    AGREEMENT_LEVELS,
    AXES,
    QUESTION_BY_AXIS,
    agreement_level,
)
from emu_video.juice.stats import binary_kappa, majority, wilson_interval
from emu_video.juice.store import Study


def compute_results(study: Study) -> dict:
    n = study.raters_per_pair
    names = study.system_names
    pairs, votes = study.votes()
    by_pair: dict[int, list[dict]] = defaultdict(list)
    for v in votes:
        by_pair[v["pair_id"]].append(v)

    pair_rows = []
    complete_votes: list[dict] = []
    for p in pairs:
        pv = by_pair.get(p["id"], [])
        row = {"prompt_id": p["prompt_id"], "prompt": p["prompt"], "votes": len(pv), "complete": len(pv) == n}
        for axis in AXES:
            va = sum(1 for v in pv if v[axis] == "a")
            row[f"{axis}_votes_a"] = va
            row[f"{axis}_votes_b"] = len(pv) - va
            row[f"{axis}_majority"] = majority(va, n) if row["complete"] else None
            row[f"{axis}_agreement"] = agreement_level(va, n) if row["complete"] else None
        pair_rows.append(row)
        if row["complete"]:
            complete_votes.extend(pv)
    complete = [r for r in pair_rows if r["complete"]]

    axes = {}
    for axis in AXES:
        wins_a = sum(1 for r in complete if r[f"{axis}_majority"] == "a")
        total = len(complete)
        low, high = wilson_interval(wins_a, total)
        votes_a = [r[f"{axis}_votes_a"] for r in complete]
        levels = {lvl: sum(1 for r in complete if r[f"{axis}_agreement"] == lvl) for lvl in AGREEMENT_LEVELS}
        left_chosen = sum(1 for v in complete_votes if (v[axis] == v["left_system"]))
        question = QUESTION_BY_AXIS[axis]
        side_votes = {s: sum(1 for v in complete_votes if v[axis] == s) for s in ("a", "b")}
        reasons = []
        for r in question.reasons:
            entry = {"reason": r.key, "label": r.label}
            for s in ("a", "b"):
                count = sum(1 for v in complete_votes if v[axis] == s and r.key in v["reasons"][axis])
                entry[f"count_{s}"] = count
                entry[f"share_{s}"] = count / side_votes[s] if side_votes[s] else None
            reasons.append(entry)
        axes[axis] = {
            "question": question.text,
            "pairs": total,
            "wins_a": wins_a,
            "wins_b": total - wins_a,
            "win_rate_a": wins_a / total if total else None,
            "win_rate_a_ci95": [low, high] if total else None,
            "win_rate_b": (total - wins_a) / total if total else None,
            "win_rate_b_ci95": [1 - high, 1 - low] if total else None,
            "agreement": levels,
            "agreement_share": {k: (v / total if total else None) for k, v in levels.items()},
            "fleiss_kappa": binary_kappa(votes_a, n) if total else None,
            "votes_a": side_votes["a"],
            "votes_b": side_votes["b"],
            "left_chosen_share": left_chosen / len(complete_votes) if complete_votes else None,
            "reasons": reasons,
        }
    return {
        "study": study.name,
        "systems": names,
        "raters_per_pair": n,
        "pairs": len(pair_rows),
        "pairs_complete": len(complete),
        "pairs_incomplete": len(pair_rows) - len(complete),
        "votes": len(votes),
        "votes_in_complete_pairs": len(complete_votes),
        "axes": axes,
        "per_pair": pair_rows,
        "generated_at": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
    }


def _pct(x) -> str:
    return "n/a" if x is None else f"{100 * x:.1f} %"


def format_results(res: dict) -> str:
    names = res["systems"]
    lines = [
        f"Study {res['study']}: A = {names['a']}, B = {names['b']}",
        f"Pairs: {res['pairs']} ({res['pairs_complete']} with all {res['raters_per_pair']} votes, "
        f"{res['pairs_incomplete']} incomplete and left out); votes: {res['votes']}",
        "",
        f"{'':14}{'A wins':>8}  {'win rate A':>10}  {'95 % CI':>16}  {'complete':>8} {'partial':>8} {'split':>8}  "
        f"{'Fleiss k':>8}  {'left picked':>11}",
    ]
    for axis, a in res["axes"].items():
        ci = a["win_rate_a_ci95"]
        ci_text = "n/a" if ci is None else f"[{100 * ci[0]:.1f}, {100 * ci[1]:.1f}]"
        kappa = "n/a" if a["fleiss_kappa"] is None else f"{a['fleiss_kappa']:.3f}"
        ag = a["agreement"]
        lines.append(
            f"{axis.capitalize():14}{a['wins_a']:>4}/{a['pairs']:<3}  {_pct(a['win_rate_a']):>10}  {ci_text:>16}  "
            f"{ag['complete']:>8} {ag['partial']:>8} {ag['split']:>8}  {kappa:>8}  {_pct(a['left_chosen_share']):>11}"
        )
    for axis, a in res["axes"].items():
        lines.append("")
        lines.append(
            f"{axis.capitalize()} reasons (share of the votes choosing each system; "
            f"{a['votes_a']} votes for A, {a['votes_b']} for B):"
        )
        width = max(len(r["label"]) for r in a["reasons"])
        for r in a["reasons"]:
            lines.append(
                f"  {r['label']:<{width}}  A {r['count_a']:>5} ({_pct(r['share_a']):>7})   "
                f"B {r['count_b']:>5} ({_pct(r['share_b']):>7})"
            )
    return "\n".join(lines)


def _atomic_write(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text, encoding="utf-8", newline="")
    os.replace(tmp, path)


def _csv_text(header: list[str], rows: list[list]) -> str:
    import io

    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(header)
    w.writerows(rows)
    return buf.getvalue()


def export_results(study: Study, res: dict, out: Path, plot: bool = True) -> list[Path]:
    """Write results.json, pairs.csv, votes.csv, reasons.csv (and results.png) into `out`."""
    out.mkdir(parents=True, exist_ok=True)
    names = res["systems"]
    written = []

    path = out / "results.json"
    _atomic_write(path, json.dumps(res, indent=2, ensure_ascii=False) + "\n")
    written.append(path)

    header = ["prompt_id", "prompt", "votes", "complete"]
    for axis in AXES:
        header += [
            f"{axis}_votes_a",
            f"{axis}_votes_b",
            f"{axis}_majority",
            f"{axis}_majority_system",
            f"{axis}_agreement",
        ]
    rows = []
    for r in res["per_pair"]:
        row = [r["prompt_id"], r["prompt"], r["votes"], int(r["complete"])]
        for axis in AXES:
            m = r[f"{axis}_majority"]
            row += [
                r[f"{axis}_votes_a"],
                r[f"{axis}_votes_b"],
                m or "",
                names[m] if m else "",
                r[f"{axis}_agreement"] or "",
            ]
        rows.append(row)
    path = out / "pairs.csv"
    _atomic_write(path, _csv_text(header, rows))
    written.append(path)

    _, votes = study.votes()
    header = ["rater", "prompt_id", "left_system", "submitted_at", "seconds"]
    for axis in AXES:
        header += [f"{axis}", f"{axis}_system", f"{axis}_side", f"{axis}_reasons"]
    rows = []
    for v in votes:
        row = [
            v["rater"],
            v["prompt_id"],
            v["left_system"],
            dt.datetime.fromtimestamp(v["submitted_at"], dt.timezone.utc).isoformat(timespec="seconds"),
            round(v["seconds"], 1),
        ]
        for axis in AXES:
            s = v[axis]
            row += [s, names[s], "left" if s == v["left_system"] else "right", ";".join(v["reasons"][axis])]
        rows.append(row)
    path = out / "votes.csv"
    _atomic_write(path, _csv_text(header, rows))
    written.append(path)

    rows = []
    for axis, a in res["axes"].items():
        for r in a["reasons"]:
            for s in ("a", "b"):
                share = r[f"share_{s}"]
                rows.append(
                    [
                        axis,
                        r["reason"],
                        r["label"],
                        s,
                        names[s],
                        r[f"count_{s}"],
                        "" if share is None else f"{share:.6f}",
                    ]
                )
    path = out / "reasons.csv"
    _atomic_write(
        path, _csv_text(["axis", "reason", "label", "system", "system_name", "count", "share_of_votes"], rows)
    )
    written.append(path)

    if plot and res["pairs_complete"]:
        path = out / "results.png"
        plot_results(res, path)
        written.append(path)
    return written


def plot_results(res: dict, path: Path) -> Path:
    """Win rates with 95 % intervals (left) and the reasons given for each system (right), as in the paper."""
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    names = res["systems"]
    color_a, color_b = "#2f5bd3", "#d98c2b"
    fig, axes = plt.subplots(1, 3, figsize=(16, 5.2), gridspec_kw={"width_ratios": [1, 1.5, 1.2]})

    ax = axes[0]
    labels = [a.capitalize() for a in res["axes"]]
    rates = [100 * (a["win_rate_a"] or 0) for a in res["axes"].values()]
    err_low = [100 * ((a["win_rate_a"] or 0) - a["win_rate_a_ci95"][0]) for a in res["axes"].values()]
    err_high = [100 * (a["win_rate_a_ci95"][1] - (a["win_rate_a"] or 0)) for a in res["axes"].values()]
    xs = list(range(len(labels)))
    bar_a = ax.bar(xs, rates, color=color_a, width=0.6, label=f"{names['a']} wins")
    bar_b = ax.bar(xs, [100 - r for r in rates], bottom=rates, color=color_b, width=0.6, label=f"{names['b']} wins")
    ax.errorbar(xs, rates, yerr=[err_low, err_high], fmt="none", ecolor="black", capsize=6, lw=1.2)
    for x, r in zip(xs, rates):
        ax.text(
            x - 0.16, max(r, 8) / 2, f"{r:.1f}%", ha="center", va="center", color="white", fontweight="bold", fontsize=9
        )
    ax.axhline(50, color="grey", lw=0.8, ls="--")
    ax.set_xticks(xs, labels)
    ax.set_ylim(0, 100)
    ax.set_ylabel("% of prompts (majority of raters)")
    ax.set_title(f"Win rate over {res['pairs_complete']} prompts (95 % CI)")
    ax.legend(handles=[bar_a, bar_b], loc="upper center", bbox_to_anchor=(0.5, -0.1), ncol=2, fontsize=8, frameon=False)

    for ax, axis in zip(axes[1:], ("quality", "faithfulness")):
        a = res["axes"][axis]
        reasons = a["reasons"]
        ys = list(range(len(reasons)))
        h = 0.38
        share_a = [100 * (r["share_a"] or 0) for r in reasons]
        share_b = [100 * (r["share_b"] or 0) for r in reasons]
        ax.barh(
            [y - h / 2 for y in ys],
            share_a,
            height=h,
            color=color_a,
            label=f"{names['a']} chosen ({a['votes_a']} votes)",
        )
        ax.barh(
            [y + h / 2 for y in ys],
            share_b,
            height=h,
            color=color_b,
            label=f"{names['b']} chosen ({a['votes_b']} votes)",
        )
        for y, sa, sb in zip(ys, share_a, share_b):
            ax.text(min(sa, 88) + 1, y - h / 2, f"{sa:.0f}%", va="center", fontsize=8)
            ax.text(min(sb, 88) + 1, y + h / 2, f"{sb:.0f}%", va="center", fontsize=8)
        ax.set_yticks(ys, [r["label"] for r in reasons])
        ax.invert_yaxis()
        ax.set_xlim(0, 100)
        ax.set_xlabel("% of the votes for that system citing the reason")
        ax.set_title(f"{axis.capitalize()}: why raters chose each video")
        ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.16), ncol=2, fontsize=8, frameon=False)
    fig.suptitle(f"JUICE study {res['study']}: {names['a']} (A) vs {names['b']} (B)")
    fig.tight_layout()
    tmp = path.with_name(f".{path.stem}.tmp.png")
    fig.savefig(tmp, dpi=120)
    plt.close(fig)
    os.replace(tmp, path)
    return path
