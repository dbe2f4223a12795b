"""The web page: a Gradio app over a `DemoModel`, one tab per pipeline, one shared queue.

Every model run goes through one queue with room for one run at a time (`concurrency_id="model"`): other
visitors see their place in the line. Uploads are checked by `emu_video.demo.uploads` as soon as they arrive
and again when a run starts; any refusal reaches the page as one clear sentence, and an unexpected failure as
a short notice (its traceback goes to the server's log, never to the page).
"""

from __future__ import annotations

import contextlib
import contextvars
import html
import logging
import queue
import threading
from pathlib import Path

import gradio as gr

from emu_video.demo.runs import DemoModel, Result, Sampling
from emu_video.demo.uploads import UploadLimits, load_image, load_video
from emu_video.diffusion.samplers import SAMPLERS
from emu_video.errors import UserError
from emu_video.io.video import IMAGE_SUFFIXES, VIDEO_SUFFIXES

log = logging.getLogger(__name__)

MODEL_QUEUE = "model"  # every model run shares this queue, with one run at a time
SYSTEM_FONTS = ["ui-sans-serif", "system-ui", "sans-serif"]  # no web fonts: the page fetches nothing outside
SYSTEM_MONO = ["ui-monospace", "monospace"]
CSS = """
#intro p { margin: 0.2em 0; }
.notes p { margin: 0.2em 0; font-size: 0.95em; }
"""


@contextlib.contextmanager
def page_errors():
    """A refusal (`UserError`) becomes its sentence in the page; anything else a short notice, with the
    traceback logged on the server only."""
    try:
        yield
    except gr.Error:
        raise
    except UserError as exc:
        raise gr.Error(html.escape(str(exc)), title="Cannot do that", print_exception=False) from None
    except Exception as exc:
        log.exception("demo run failed")
        raise gr.Error(f"The run failed on the server ({html.escape(type(exc).__name__)}); its log says more.",
                       print_exception=False) from None


def _notes(result: Result) -> str:
    lines = [f"**{html.escape(result.summary())}**"] + [f"⚠ {html.escape(n)}" for n in result.notes]
    return "\n\n".join(lines)


def _outputs(result: Result) -> tuple:
    return str(result.mp4), [str(result.mp4), str(result.gif)], _notes(result)


def _sampling(seed, steps, sampler, w_img, w_txt) -> Sampling:
    return Sampling(int(seed or 0), int(steps), str(sampler), float(w_img), float(w_txt))


def _in_thread(run, events: queue.Queue) -> None:
    """`run()` in a worker thread that sees this event's context (so its tqdm bars reach this event's
    progress); puts ("done", result) or ("error", exception) on `events`."""
    context = contextvars.copy_context()

    def target():
        try:
            events.put(("done", context.run(run)))
        except BaseException as exc:  # handed over to the event's thread, which raises it there
            events.put(("error", exc))

    threading.Thread(target=target, daemon=True, name="emu-video-demo-run").start()


def _upload_path(file) -> str | None:
    return None if file is None else str(file)


class DemoApp:
    """The handlers behind the page's buttons and upload boxes."""

    def __init__(self, model: DemoModel, limits: UploadLimits):
        self.model = model
        self.limits = limits

    # Uploads ------------------------------------------------------------------------------------------------
    def inspect_image(self, file):
        """On upload: a preview, or what is wrong with the file."""
        if file is None:
            return None, ""
        try:
            image = load_image(_upload_path(file), self.limits)
        except UserError as exc:
            return None, f"⚠ {html.escape(str(exc))}"
        return image, f"{image.shape[1]}x{image.shape[0]} px"

    def inspect_video(self, file):
        if file is None:
            return ""
        try:
            video = load_video(_upload_path(file), self.limits)
        except UserError as exc:
            return f"⚠ {html.escape(str(exc))}"
        t, h, w, _ = video.frames.shape
        return f"{t} frames at {video.fps:g} fps, {w}x{h} px"

    # Runs ---------------------------------------------------------------------------------------------------
    def text_to_video(self, prompt, frames, interpolate, interp_steps, image_guidance, seed, steps, sampler, w_img,
                      w_txt, progress=gr.Progress(track_tqdm=True)):
        """Yields the first frame as soon as it exists, then the video."""
        with page_errors():
            sampling = _sampling(seed, steps, sampler, w_img, w_txt)
            events = queue.Queue()
            _in_thread(lambda: self.model.text_to_video(
                prompt, sampling, frames=int(frames), interpolate=bool(interpolate), interp_steps=int(interp_steps),
                image_guidance=float(image_guidance), on_first_frame=lambda image: events.put(("first", image)),
            ), events)
            while True:
                kind, value = events.get()
                if kind == "first":
                    yield value, None, None, "First frame ready; animating it…"
                elif kind == "error":
                    raise value
                else:
                    yield (gr.skip(), *_outputs(value))
                    return

    def animate(self, image_file, last_file, prompt, frames, interpolate, interp_steps, seed, steps, sampler, w_img,
                w_txt, progress=gr.Progress(track_tqdm=True)):
        with page_errors():
            image = load_image(_upload_path(image_file), self.limits)
            last = None if last_file is None else load_image(_upload_path(last_file), self.limits)
            result = self.model.animate(image, prompt, _sampling(seed, steps, sampler, w_img, w_txt), int(frames),
                                        last_image=last, interpolate=bool(interpolate), interp_steps=int(interp_steps))
            return _outputs(result)

    def interpolate(self, video_file, prompt, seed, steps, sampler, w_img, w_txt,
                    progress=gr.Progress(track_tqdm=True)):
        with page_errors():
            video = load_video(_upload_path(video_file), self.limits)
            return _outputs(self.model.interpolate(video, prompt or "", _sampling(seed, steps, sampler, w_img, w_txt)))

    def extend(self, video_file, prompt, past, new, seed, steps, sampler, w_img, w_txt,
               progress=gr.Progress(track_tqdm=True)):
        with page_errors():
            video = load_video(_upload_path(video_file), self.limits)
            result = self.model.extend(video, prompt, _sampling(seed, steps, sampler, w_img, w_txt), past=int(past),
                                       new=int(new))
            return _outputs(result)


def _result_column(prefix: str):
    """The outputs every tab shows: the video, its files to download, and notes."""
    video = gr.Video(label="Video", elem_id=f"{prefix}-video", interactive=False, autoplay=True, loop=True)
    files = gr.File(label="Download (H.264 mp4, GIF)", elem_id=f"{prefix}-files", file_count="multiple",
                    interactive=False)
    notes = gr.Markdown(elem_id=f"{prefix}-notes", elem_classes=["notes"])
    return [video, files, notes]


def _image_upload(label: str, elem_id: str):
    return gr.File(label=label, elem_id=elem_id, file_types=list(IMAGE_SUFFIXES), type="filepath")


def _video_upload(elem_id: str):
    return gr.File(label="Video (MP4, WebM, MKV, MOV, AVI or GIF)", elem_id=elem_id, file_types=list(VIDEO_SUFFIXES),
                   type="filepath")


def build_demo(model: DemoModel, limits: UploadLimits, model_name: str = "the default model") -> gr.Blocks:
    """The page: tabs for text -> video, animate an image, interpolate and extend a video; shared settings."""
    app = DemoApp(model, limits)
    d = model.defaults
    run = {"concurrency_limit": 1, "concurrency_id": MODEL_QUEUE}
    light = {"concurrency_limit": 4, "show_progress": "hidden"}
    size = f"{d['width']}x{d['height']}"
    with gr.Blocks(title="emu-video demo", analytics_enabled=False, delete_cache=(1800, 3600)) as demo:
        gr.Markdown(
            f"## emu-video\n"
            f"Text → first frame → video ({d['num_frames']} frames at {d['fps']:g} fps, {size}) → frame interpolation "
            f"to 4× the frame rate, with **{html.escape(model_name)}**. One run at a time: others wait in the queue. "
            f"Uploads: at most {limits.max_megabytes:g} MB.", elem_id="intro")
        frames_slider = {"minimum": 8, "maximum": max(64, int(d["num_frames"])), "step": 8,
                         "value": int(d["num_frames"]), "label": "Frames", "info": "before interpolation"}
        interp_steps_slider = {"minimum": 1, "maximum": 50, "step": 1, "value": int(d["interpolation_steps"]),
                               "label": "Interpolation steps"}
        with gr.Tabs():
            with gr.Tab("Text → video", id="text"):
                with gr.Row():
                    with gr.Column():
                        prompt = gr.Textbox(label="Prompt", elem_id="text-prompt", lines=2,
                                            placeholder="what the video shows")
                        with gr.Row():
                            frames = gr.Slider(elem_id="text-frames", **frames_slider)
                            interpolate = gr.Checkbox(value=model.can_interpolate, label="Interpolate",
                                                      interactive=model.can_interpolate, elem_id="text-interpolate")
                        with gr.Row():
                            interp_steps = gr.Slider(elem_id="text-interp-steps", **interp_steps_slider)
                            image_guidance = gr.Slider(0, 15, value=float(d["image_guidance"]), step=0.1,
                                                       label="First-frame guidance", elem_id="text-image-guidance")
                        text_button = gr.Button("Generate", variant="primary", elem_id="text-run")
                        if model.examples():
                            gr.Examples([[p] for p in model.examples()], inputs=[prompt], label="Shapes World prompts",
                                        cache_examples=False)
                    with gr.Column():
                        first = gr.Image(label="First frame", elem_id="text-first-frame", interactive=False,
                                         height=200)
                        text_out = _result_column("text")
            with gr.Tab("Animate an image", id="animate"):
                with gr.Row():
                    with gr.Column():
                        with gr.Row():
                            image_file = _image_upload("First frame (PNG, JPEG, BMP or WebP)", "animate-image")
                            last_file = _image_upload("Last frame (optional)", "animate-last")
                        with gr.Row():
                            image_preview = gr.Image(label="First frame", interactive=False, height=160,
                                                     elem_id="animate-image-preview")
                            last_preview = gr.Image(label="Last frame", interactive=False, height=160,
                                                    elem_id="animate-last-preview")
                        image_status = gr.Markdown(elem_id="animate-image-status", elem_classes=["notes"])
                        last_status = gr.Markdown(elem_id="animate-last-status", elem_classes=["notes"])
                        animate_prompt = gr.Textbox(label="Prompt", elem_id="animate-prompt", lines=2)
                        with gr.Row():
                            animate_frames = gr.Slider(elem_id="animate-frames", **frames_slider)
                            animate_interpolate = gr.Checkbox(value=False, label="Interpolate",
                                                              interactive=model.can_interpolate,
                                                              elem_id="animate-interpolate")
                            animate_interp_steps = gr.Slider(elem_id="animate-interp-steps", **interp_steps_slider)
                        animate_button = gr.Button("Animate", variant="primary", elem_id="animate-run")
                    with gr.Column():
                        animate_out = _result_column("animate")
            with gr.Tab("Interpolate a video", id="interpolate"):
                with gr.Row():
                    with gr.Column():
                        interp_file = _video_upload("interpolate-video")
                        interp_status = gr.Markdown(elem_id="interpolate-status", elem_classes=["notes"])
                        gr.Markdown("8, 16, 24… frames at the model's frame rate in; 4× the frame rate out "
                                    "(8 → 37 frames, 16 → 65). The steps setting below is the interpolation "
                                    "model's.", elem_classes=["notes"])
                        interp_prompt = gr.Textbox(label="Prompt (optional)", elem_id="interpolate-prompt")
                        interp_button = gr.Button("Interpolate", variant="primary", elem_id="interpolate-run")
                    with gr.Column():
                        interp_out = _result_column("interpolate")
            with gr.Tab("Extend a video", id="extend"):
                with gr.Row():
                    with gr.Column():
                        extend_file = _video_upload("extend-video")
                        extend_status = gr.Markdown(elem_id="extend-status", elem_classes=["notes"])
                        extend_prompt = gr.Textbox(label="What happens next", elem_id="extend-prompt", lines=2)
                        window = int(d["num_frames"])
                        with gr.Row():
                            past = gr.Slider(1, window - 1, value=window // 2, step=1, label="Frames to continue from",
                                             elem_id="extend-past")
                            new = gr.Slider(1, window - 1, value=window - window // 2, step=1, label="New frames",
                                            elem_id="extend-new")
                        extend_button = gr.Button("Extend", variant="primary", elem_id="extend-run")
                    with gr.Column():
                        extend_out = _result_column("extend")
        with gr.Accordion("Settings (every tab)", open=True):
            with gr.Row():
                seed = gr.Number(value=0, precision=0, minimum=0, maximum=2**31 - 1, label="Seed",
                                 info="same seed and settings, same video", elem_id="seed")
                steps = gr.Slider(1, 100, value=int(d["steps"]), step=1, label="Steps", info="per sampling stage",
                                  elem_id="steps")
                sampler = gr.Dropdown(list(SAMPLERS), value=d["sampler"], label="Sampler", elem_id="sampler")
                w_img = gr.Slider(0, 10, value=float(d["w_img"]), step=0.1, label="Image guidance w_img",
                                  elem_id="w-img")
                w_txt = gr.Slider(0, 15, value=float(d["w_txt"]), step=0.1, label="Text guidance w_txt",
                                  elem_id="w-txt")
        shared = [seed, steps, sampler, w_img, w_txt]

        text_inputs = [prompt, frames, interpolate, interp_steps, image_guidance, *shared]
        for trigger in (text_button.click, prompt.submit):  # the first frame stays visible under the video's bar
            trigger(app.text_to_video, text_inputs, [first, *text_out], show_progress_on=text_out[0], **run)
        image_file.change(app.inspect_image, image_file, [image_preview, image_status], **light)
        last_file.change(app.inspect_image, last_file, [last_preview, last_status], **light)
        animate_button.click(app.animate, [image_file, last_file, animate_prompt, animate_frames, animate_interpolate,
                                           animate_interp_steps, *shared], animate_out,
                             show_progress_on=animate_out[0], **run)
        interp_file.change(app.inspect_video, interp_file, interp_status, **light)
        interp_button.click(app.interpolate, [interp_file, interp_prompt, *shared], interp_out,
                            show_progress_on=interp_out[0], **run)
        extend_file.change(app.inspect_video, extend_file, extend_status, **light)
        extend_button.click(app.extend, [extend_file, extend_prompt, past, new, *shared], extend_out,
                            show_progress_on=extend_out[0], **run)
    return demo


def serve(model: DemoModel, limits: UploadLimits, host: str = "127.0.0.1", port: int = 7860, queue_size: int = 16,
          model_name: str = "the default model", block: bool = True) -> tuple[gr.Blocks, str]:
    """Build the page and serve it at host:port (blocking unless `block=False`); returns it and its URL."""
    demo = build_demo(model, limits, model_name)
    demo.queue(max_size=queue_size)
    theme = gr.themes.Default(font=SYSTEM_FONTS, font_mono=SYSTEM_MONO)
    try:
        demo.launch(server_name=host, server_port=port, max_file_size=limits.max_bytes, show_error=False,
                    allowed_paths=[str(Path(model.outputs).resolve())], prevent_thread_lock=True, theme=theme,
                    css=CSS, ssr_mode=False, share=False, quiet=True)
    except OSError:
        raise UserError(f"cannot serve on {host}:{port}: the port is taken (or the address is not this "
                        "computer's); choose another --port or --host") from None
    if block:
        print(f"emu-video demo: open {demo.local_url} in a browser (Ctrl+C stops it)", flush=True)
        try:
            demo.block_thread()
        finally:
            demo.close()
    return demo, demo.local_url
