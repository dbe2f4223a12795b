"""The `emu-video` command: one sub-command module per concern, each exposing `register(subparsers)`."""

from __future__ import annotations

import argparse
import importlib
import sys

from emu_video.errors import UserError

# Each module defines register(subparsers) and sets a `func(args) -> int | None` default on its parsers.
COMMAND_MODULES = (
    "emu_video.cli.describe",
    "emu_video.cli.init",
    "emu_video.cli.generate",
    "emu_video.cli.lora",
    "emu_video.cli.train",
    "emu_video.cli.curate",
    "emu_video.cli.shapes",
    "emu_video.cli.juice",
    "emu_video.cli.evaluate",
    "emu_video.cli.protocol",
    "emu_video.cli.demo",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="emu-video",
        description=(
            "Emu Video: factorized text-to-video generation. Text -> first frame (text-to-image U-Net), "
            "first frame + text -> video (the same U-Net with its temporal layers), then frame "
            "interpolation to 16 fps. Run `emu-video COMMAND --help` for each command."
        ),
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMAND_MODULES:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:  # a command module that is not part of this install
            if exc.name != name:
                raise
            continue
        module.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 1
    try:
        code = args.func(args)
    except UserError as exc:
        print(f"emu-video: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("emu-video: interrupted", file=sys.stderr)
        return 130
    return int(code or 0)


if __name__ == "__main__":
    sys.exit(main())
