"""`emu-video protocol ucf101 | msrvtt | vbench`: generate a benchmark's videos with a model, ready to score."""

from __future__ import annotations

import argparse
from pathlib import Path

from emu_video.errors import UserError

RUN_NOTE = (
    "Resumable: videos already in --out are skipped and every video is written under a hidden temporary name and "
    "renamed, so rerunning the same command after a crash or a kill finishes the set. --shard I/N splits the plan "
    "over N processes (e.g. one per GPU: CUDA_VISIBLE_DEVICES=0 ... --shard 0/4, CUDA_VISIBLE_DEVICES=1 ... "
    "--shard 1/4, ...), all writing into the same --out. The folder also gets prompts.jsonl (for `emu-video "
    "evaluate --prompts`) and protocol.json (the settings; a rerun with other settings is refused). At the end the "
    "command prints the `emu-video evaluate` command that scores the folder. docs/evaluation.md has the details."
)


def _runner_options(p: argparse.ArgumentParser) -> None:
    from emu_video.cli.generate import _common, add_text_to_video_options

    p.add_argument("--out", type=Path, metavar="DIR", required=True, help="folder the videos go into")
    p.add_argument("--shard", metavar="I/N", default=None,
                   help="generate only the plan entries whose index is I modulo N (0 <= I < N)")
    p.add_argument("--limit", type=int, metavar="K", default=None,
                   help="only the first K entries of the plan (a small trial run; prompts.jsonl lists those K)")
    _common(p, one_video=False)
    add_text_to_video_options(p)


def register(sub) -> None:
    p = sub.add_parser(
        "protocol", help="generate the videos of a benchmark (UCF-101, MSR-VTT, VBench) to score with `evaluate`",
        description="Generate every video an evaluation protocol asks for, with the text-to-video pipeline of a "
                    "model folder, into one folder laid out the way the protocol's scorer reads it. " + RUN_NOTE,
    )
    ps = p.add_subparsers(dest="protocol", metavar="PROTOCOL")
    u = ps.add_parser(
        "ucf101", help="UCF-101 zero-shot: class-name prompts with UCF-101's class distribution (FVD, IS)",
        description="The UCF-101 zero-shot protocol of Make-A-Video, Align Your Latents and Emu Video: one prompt "
                    "per class from its folder name (ApplyEyeMakeup -> 'apply eye makeup'), --total videos split "
                    "over the classes in proportion to the real data set's class sizes, named "
                    "{Class}_{nnnn}.mp4. Score with FVD against the real clips and IS with the UCF-101 C3D. "
                    + RUN_NOTE,
    )
    u.add_argument("--real", type=Path, metavar="UCF101_DIR", required=True,
                   help="the unpacked UCF-101 folder (UCF-101/ApplyEyeMakeup/v_ApplyEyeMakeup_g01_c01.avi, ...): "
                        "its class folders give the prompts and the class distribution")
    u.add_argument("--total", type=int, default=10_000, help="videos to generate (default 10000)")
    _runner_options(u)
    u.set_defaults(func=_run, plan=_ucf101_plan)
    m = ps.add_parser(
        "msrvtt", help="MSR-VTT zero-shot: one caption per test video (CLIPSIM, FVD)",
        description="The MSR-VTT zero-shot protocol: one video per test video from its first caption, named like "
                    "the real video (video7010.mp4, ...). --annotations takes test_videodatainfo.json (the "
                    "2,990-video test split of the MSR-VTT release) or MSRVTT_JSFUSION_test.csv (the 1,000-video "
                    "1k-A split). " + RUN_NOTE,
    )
    m.add_argument("--annotations", type=Path, metavar="FILE", required=True,
                   help="test_videodatainfo.json or MSRVTT_JSFUSION_test.csv")
    m.add_argument("--real", type=Path, metavar="DIR", default=None,
                   help="the real test videos (MSRVTT/videos/TestVideo); only used in the printed evaluate command")
    _runner_options(m)
    m.set_defaults(func=_run, plan=_msrvtt_plan)
    v = ps.add_parser(
        "vbench", help="VBench: prompts from a text file, videos named {prompt}-{index}.mp4 (custom_input)",
        description="VBench's custom_input layout: --samples videos per prompt of a text file (one prompt per "
                    "line, e.g. VBench's prompts/all_dimension.txt), named {prompt}-{index}.mp4, for VBench's own "
                    "`vbench evaluate --videos_path DIR --mode=custom_input` and for `emu-video evaluate`. "
                    + RUN_NOTE,
    )
    v.add_argument("--prompts", type=Path, metavar="FILE.txt", required=True, help="prompts, one per line")
    v.add_argument("--samples", type=int, default=5, help="videos per prompt (default 5, as VBench samples)")
    _runner_options(v)
    v.set_defaults(func=_run, plan=_vbench_plan)
    p.set_defaults(func=lambda args: (p.print_help(), 1)[1])


def _ucf101_plan(args) -> list[dict]:
    from emu_video.evaluation.protocols import ucf101_class_counts, ucf101_plan

    if args.total < 1:
        raise UserError(f"--total must be at least 1, got {args.total}")
    return ucf101_plan(ucf101_class_counts(args.real), total=args.total, seed=args.seed)


def _msrvtt_plan(args) -> list[dict]:
    from emu_video.evaluation.protocols import msrvtt_captions, msrvtt_plan

    return msrvtt_plan(msrvtt_captions(args.annotations), seed=args.seed)


def _vbench_plan(args) -> list[dict]:
    from emu_video.evaluation.protocols import read_prompt_lines, vbench_plan

    if args.samples < 1:
        raise UserError(f"--samples must be at least 1, got {args.samples}")
    return vbench_plan(read_prompt_lines(args.prompts), samples_per_prompt=args.samples, seed=args.seed)


def _settings(args, plan: list[dict]) -> dict:
    """What decides the videos: the protocol and its plan's size, the model and every sampling option."""
    keep = ("model", "seed", "steps", "sampler", "w_img", "w_txt", "dtype", "lora", "lora_scale", "image_guidance",
            "interp_steps", "frames", "no_interpolate", "direct", "total", "samples")
    import hashlib
    import json

    digest = hashlib.sha256(json.dumps(plan, sort_keys=True).encode()).hexdigest()[:16]
    out = {"protocol": args.protocol, "plan_size": len(plan), "plan_sha256": digest}
    for key in keep:
        if hasattr(args, key):
            value = getattr(args, key)
            if isinstance(value, (list, tuple)):
                value = [v if isinstance(v, (int, float)) else str(v) for v in value]
            elif not (value is None or isinstance(value, (bool, int, float, str))):
                value = str(value)
            out[key] = value
    if args.model is not None:
        out["model"] = str(Path(args.model).resolve())
    return out


def _run(args) -> int:
    from emu_video.cli.generate import (
        _sampling,
        domain_warnings,
        load_components,
        text_to_video_options,
    )
    from emu_video.evaluation.protocol_runner import (
        check_folder,
        check_settings,
        evaluate_command,
        parse_shard,
        pipeline_generator,
        run_plan,
        select,
    )
    from emu_video.evaluation.protocols import pending
    from emu_video.pipelines import TextToVideoPipeline

    shard = parse_shard(args.shard)
    plan = args.plan(args)
    sampling = _sampling(args)  # checks every option before the model loads
    out = Path(args.out)
    settings = _settings(args, plan)
    check_folder(out, plan)
    if out.is_dir():  # other settings in this folder: refused before the model loads (nothing written yet)
        check_settings(out, settings, write=False)
    todo = pending(select(plan, shard, args.limit), out) if out.is_dir() else select(plan, shard, args.limit)
    generate = None
    if todo:
        components = load_components(args)
        warnings = domain_warnings(components, todo[0]["prompt"])
        if warnings:
            print(warnings[0] + " (this protocol's prompts are of the open world)")
        generate = pipeline_generator(TextToVideoPipeline(components), sampling, text_to_video_options(args))
    summary = run_plan(plan, out, generate, settings, shard=shard, limit=args.limit,
                       progress=not args.quiet, desc=f"{args.protocol} {shard[0]}/{shard[1]}")
    print(f"{out}: generated {summary.generated}, {summary.skipped} already there "
          f"({summary.shard_entries} of the plan's {summary.planned} in this shard); prompts: {summary.prompts}")
    command = evaluate_command(args.protocol, out, getattr(args, "real", None))
    if summary.complete:
        print("score it with:")
    else:
        print("the folder is not complete yet (other shards, or a --limit run); when it is, score it with:")
    print(f"  {command}")
    if args.protocol == "vbench":
        print(f"  or with VBench: vbench evaluate --videos_path {out} --mode=custom_input --dimension DIMENSION")
    return 0
