"""`emu-video demo`: the pipelines in a web page (Gradio, the optional `demo` extra)."""

from __future__ import annotations

import argparse
import shutil
import tempfile

from emu_video.errors import UserError

INSTALL_HINT = "the demo needs Gradio: pip install 'emu-video[demo]' (or pip install -e '.[demo]' in a checkout)"


def register(sub) -> None:
    d = sub.add_parser(
        "demo", help="a web page to try the model: text -> video, animate an image, interpolate, extend",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description=(
            "Serve a web demo of the model (Gradio): type a prompt and watch the first frame, then the video;\n"
            "animate an uploaded image (optionally towards a last frame); interpolate or extend an uploaded video.\n"
            "Seed, steps, sampler and both guidance weights are in the page; every result downloads as an H.264\n"
            "mp4 and a GIF. Model runs queue: one at a time, other visitors wait their turn.\n\n"
            "It listens on 127.0.0.1 (this computer only) unless --host says otherwise. To let others in, serve\n"
            "on all interfaces with --host 0.0.0.0 (anyone who can reach the port can use it), or keep the default\n"
            "and forward the port over SSH from their side: ssh -L 7860:127.0.0.1:7860 USER@THIS-HOST.\n\n"
            "Needs the demo extra: pip install 'emu-video[demo]'."
        ),
    )
    d.add_argument("--model", metavar="DIR", default=None,
                   help="model folder (default: the model shipped with the package, which knows Shapes World and "
                        "runs on a CPU in seconds)")
    d.add_argument("--host", default="127.0.0.1",
                   help="address to listen on (default 127.0.0.1: this computer only; 0.0.0.0: every interface)")
    d.add_argument("--port", type=int, default=7860, help="port to listen on (default 7860)")
    d.add_argument("--device", default="cpu", help="torch device, e.g. cpu, cuda, cuda:1 (default cpu)")
    d.add_argument("--dtype", default="float32", choices=["float32", "float16", "bfloat16"],
                   help="weights and activations dtype (default float32)")
    d.add_argument("--optimize", action="store_true", help="switch on the U-Net's fast paths (see `generate --help`)")
    d.add_argument("--max-upload-mb", type=float, default=20.0,
                   help="largest upload taken, in MB (default 20); larger ones are refused with a message")
    d.add_argument("--queue-size", type=int, default=16,
                   help="visitors who may wait in the queue at once (default 16); more are asked to come back later")
    d.set_defaults(func=run_demo, tune_kernels=False)


def check_demo_args(args) -> None:
    """The demo's own arguments, refused before the model loads or Gradio is imported."""
    from emu_video.cli.generate import check_args

    check_args(args)
    if not 0 < args.port < 65536:
        raise UserError(f"--port must be from 1 to 65535, got {args.port}")
    if not args.max_upload_mb > 0:
        raise UserError(f"--max-upload-mb must be positive, got {args.max_upload_mb}")
    if args.queue_size < 1:
        raise UserError(f"--queue-size must be at least 1, got {args.queue_size}")


def import_gradio():
    try:
        import gradio
    except ImportError:
        raise UserError(INSTALL_HINT) from None
    return gradio


def run_demo(args) -> int:
    check_demo_args(args)
    import_gradio()
    from emu_video.cli.generate import load_components
    from emu_video.demo.app import serve
    from emu_video.demo.runs import DemoModel
    from emu_video.demo.uploads import UploadLimits

    components = load_components(args)
    outputs = tempfile.mkdtemp(prefix="emu-video-demo-")
    try:
        model = DemoModel(components, outputs)
        limits = UploadLimits(max_bytes=int(args.max_upload_mb * 2**20))
        serve(model, limits, host=args.host, port=args.port, queue_size=args.queue_size,
              model_name=args.model or "the default model (Shapes World)")
    finally:
        shutil.rmtree(outputs, ignore_errors=True)
    return 0
