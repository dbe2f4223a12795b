"""The demo page in headless Chromium (Debian's `chromium`, driven by Playwright) with the default model on the
CPU: a prompt gives the first frame, then a playable H.264 video; an uploaded image is animated; bad uploads
get one clear sentence and no traceback.

Set up with `.ci/browser_setup.sh` (apt's chromium and pip's playwright; no browser download). Skipped, with
the reason, where Chromium, Playwright or Gradio is missing. One server and one browser for the module.
"""

import os
import shutil
import socket

import pytest

from emu_video.io.video import probe_video, write_image

CHROMIUM = os.environ.get("JUICE_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]

sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed (.ci/browser_setup.sh)")
pytest.importorskip("gradio", reason="gradio is not installed (pip install -e '.[demo]')")
if not os.path.exists(CHROMIUM):
    pytest.skip("chromium is not installed (.ci/browser_setup.sh: apt-get install -y chromium)",
                allow_module_level=True)

PROMPT = "a red circle moves left on a black background"
MAX_UPLOAD = 64 * 1024


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    from emu_video.demo.app import serve
    from emu_video.demo.runs import DemoModel
    from emu_video.demo.uploads import UploadLimits
    from emu_video.pipelines import EmuVideoComponents

    model = DemoModel(EmuVideoComponents.from_pretrained(None), tmp_path_factory.mktemp("demo-runs"))
    limits = UploadLimits(max_bytes=MAX_UPLOAD)
    port = _free_port()
    demo, url = serve(model, limits, port=port, block=False)
    try:
        yield model, limits, port, url
    finally:
        demo.close()


@pytest.fixture(scope="module")
def browser():
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        try:
            yield b
        finally:
            b.close()


@pytest.fixture
def page(browser, server):
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    outside = []
    page.on("request", lambda r: outside.append(r.url) if not r.url.startswith(("http://127.0.0.1", "data:", "blob:"))
            else None)
    page.goto(server[3])
    page.wait_for_selector("#text-prompt textarea", timeout=30000)
    yield page
    page.close()
    assert outside == []  # the page fetches nothing from outside this machine


def _set_number(page, elem_id: str, value) -> None:
    box = page.locator(f"#{elem_id} input[type=number]")
    box.fill(str(value))
    box.press("Enter")


def _fast(page) -> None:
    _set_number(page, "steps", 1)


def _playable(page, prefix: str) -> dict:
    page.wait_for_function(
        f"() => {{ const v = document.querySelector('#{prefix}-video video'); return v && v.readyState >= 2; }}",
        timeout=120000)
    return page.evaluate(f"() => {{ const v = document.querySelector('#{prefix}-video video'); "
                         "return {src: v.src, duration: v.duration, width: v.videoWidth, error: v.error}; }")


def _download(page, prefix: str, suffix: str, tmp_path):
    link = page.locator(f"#{prefix}-files a[download$='{suffix}']")
    response = page.request.get(link.get_attribute("href"))
    assert response.ok
    out = tmp_path / f"download{suffix}"
    out.write_bytes(response.body())
    return out


def test_prompt_shows_the_first_frame_then_a_playable_video(page, tmp_path):
    page.fill("#text-prompt textarea", PROMPT)
    _set_number(page, "text-frames", 8)
    _set_number(page, "text-interp-steps", 1)
    _fast(page)
    page.evaluate("""() => {
        window.seen = [];
        new MutationObserver(() => {
            if (document.querySelector('#text-first-frame img') && !seen.includes('first frame')) seen.push('first frame');
            if (document.querySelector('#text-video video[src]') && !seen.includes('video')) seen.push('video');
        }).observe(document.body, {subtree: true, childList: true, attributes: true});
    }""")
    page.click("#text-run")
    video = _playable(page, "text")
    assert page.evaluate("() => window.seen") == ["first frame", "video"]
    assert video["error"] is None and video["width"] == 128 and video["duration"] > 2
    notes = page.locator("#text-notes").inner_text()
    assert "37 frames at 16 fps (2.31 s), 128x128" in notes and "warning" not in notes
    info = probe_video(_download(page, "text", ".mp4", tmp_path))
    assert (info["codec"], info["pix_fmt"], info["frames"], info["fps"]) == ("h264", "yuv420p", 37, 16.0)
    assert _download(page, "text", ".gif", tmp_path).read_bytes()[:6] == b"GIF89a"


def test_an_uploaded_image_is_animated(page, tmp_path):
    from emu_video.shapes.grammar import scene_from_prompt
    from emu_video.shapes.render import render_image

    frame = write_image(tmp_path / "circle.png", render_image(scene_from_prompt(PROMPT, seed=1)))
    page.get_by_role("tab", name="Animate an image").click()
    page.set_input_files("#animate-image input[type=file]", str(frame))
    page.wait_for_selector("#animate-image-preview img", timeout=30000)
    assert "128x128 px" in page.locator("#animate-image-status").inner_text()
    page.fill("#animate-prompt textarea", "a cat jumps over the moon")  # out of the model's domain
    _set_number(page, "animate-frames", 8)
    _fast(page)
    page.click("#animate-run")
    video = _playable(page, "animate")
    assert video["error"] is None and video["duration"] > 1
    notes = page.locator("#animate-notes").inner_text()
    assert "8 frames at 4 fps (2.00 s), 128x128" in notes
    assert "this model knows only Shapes World" in notes  # the command line's warning, in the page


def test_bad_uploads_get_one_clear_sentence(page, server, tmp_path):
    from emu_video.demo.app import serve
    from emu_video.errors import UserError

    broken = tmp_path / "broken.png"
    broken.write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4)
    page.get_by_role("tab", name="Animate an image").click()
    page.set_input_files("#animate-image input[type=file]", str(broken))
    status = page.locator("#animate-image-status")
    status.filter(has_text="broken.png").wait_for(timeout=30000)
    assert status.inner_text().strip() == "⚠ broken.png is not a readable image (corrupt, or not really PNG)"
    page.fill("#animate-prompt textarea", PROMPT)
    page.click("#animate-run")
    toast = page.get_by_text("broken.png is not a readable image (corrupt, or not really PNG)").last
    toast.wait_for(timeout=30000)
    # too large and wrong type are refused in the page before anything runs
    (tmp_path / "big.png").write_bytes(b"\x89PNG" + bytes(MAX_UPLOAD + 10))
    page.set_input_files("#animate-last input[type=file]", str(tmp_path / "big.png"))
    page.get_by_text('exceed the maximum allowed size of 64.0 Kb: "big.png"').wait_for(timeout=30000)
    (tmp_path / "notes.txt").write_text("hello")
    page.get_by_role("tab", name="Extend a video").click()
    page.set_input_files("#extend-video input[type=file]", str(tmp_path / "notes.txt"))
    page.get_by_text("Invalid file type: notes.txt").wait_for(timeout=30000)
    assert "Traceback" not in page.locator("body").inner_text()
    # a second server on the same port is refused in one sentence
    model, limits, port, _ = server
    with pytest.raises(UserError, match=f"cannot serve on 127.0.0.1:{port}: the port is taken"):
        serve(model, limits, port=port, block=False)
