"""A rater in headless Chromium (Debian's `chromium`, driven by Playwright): tasks, refusals, resume, admin.

Set up with `.ci/browser_setup.sh` (apt's chromium and pip's playwright; no browser download). Skipped, with
the reason, where either is missing.
"""

import contextlib
import os
import shutil
import sqlite3

import pytest
from juice_helpers import db_counts, moving_square_video

CHROMIUM = os.environ.get("JUICE_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]

sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed (.ci/browser_setup.sh)")
if not os.path.exists(CHROMIUM):
    pytest.skip(
        "chromium is not installed (.ci/browser_setup.sh: apt-get install -y chromium)", allow_module_level=True
    )

EVIL_PROMPT = 'A cat <img src=x onerror="document.title=\'pwned\'"> & a "dog"'


@pytest.fixture(scope="module")
def browser():
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        try:
            yield b
        finally:
            b.close()


@pytest.fixture
def study_and_server(tmp_path, serve):
    from emu_video.juice.study import make_study_from_files

    a, b = tmp_path / "a.mp4", tmp_path / "b.mp4"
    moving_square_video(a, 96, 96, 16, 8, (200, 40, 40))
    moving_square_video(b, 96, 96, 16, 8, (40, 40, 200))
    pairs = [
        ("p000", "A red ball bouncing on a wooden floor", a, b),
        ("p001", EVIL_PROMPT, a, b),
        ("p002", "A teddy bear painting a portrait, time-lapse", a, b),
    ]
    study = make_study_from_files(tmp_path / "root", "web", pairs, system_a="Ours", system_b="Theirs")
    ((label, token),) = study.add_raters(1)
    return study, token, serve(study)


def _task_state(page):
    page.wait_for_selector("#task:not([hidden])", timeout=15000)
    return page.locator("#prompt").text_content()


def _vote_rows(study):
    with contextlib.closing(sqlite3.connect(study.db_path)) as conn:
        return conn.execute(
            "SELECT p.prompt, v.quality, v.faithfulness, v.left_system FROM votes v JOIN pairs p ON p.id = v.pair_id "
            "ORDER BY v.id"
        ).fetchall()


def test_rater_walkthrough(browser, study_and_server, tmp_path):
    study, token, base = study_and_server
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    console_errors = []
    page.on("console", lambda m: console_errors.append(m.text) if m.type == "error" else None)
    page.goto(f"{base}/r/{token}")
    prompts_seen = [_task_state(page)]

    # Both videos load and play (H.264 in an mp4, served with Range support).
    page.wait_for_function(
        "() => ['left','right'].every(s => document.getElementById('video-' + s).readyState >= 2)", timeout=15000
    )
    assert page.locator("#video-left").get_attribute("src").startswith(f"/api/r/{token}/video/")
    assert page.locator(".question").count() == 2
    assert page.locator("#q-quality .reason").count() == 5 and page.locator("#q-faithfulness .reason").count() == 2
    assert page.locator("#q-quality legend").text_content() == "1. Which video do you prefer?"
    assert page.locator("#q-faithfulness legend").text_content() == "2. Which video aligns better with the text prompt?"

    # 1. Nothing chosen: refused in the page, nothing stored.
    page.click("#submit")
    assert "Pick the left or the right video" in page.locator("#error-quality").text_content()
    assert "Not submitted" in page.locator("#form-error").text_content()
    # 2. Choices but no reasons: refused, nothing stored.
    page.check("#choice-quality-left")
    page.check("#choice-faithfulness-right")
    page.click("#submit")
    assert "at least one factor" in page.locator("#error-quality").text_content()
    assert "at least one factor" in page.locator("#error-faithfulness").text_content()
    page.screenshot(path=str(tmp_path / "refused.png"), full_page=True)
    assert db_counts(study.db_path)["votes"] == 0
    # 3. The server refuses it too, whatever the page does.
    task_id = page.evaluate("() => fetch(location.pathname.replace('/r/', '/api/r/') + '/next').then(r => r.json())")[
        "task"
    ]["id"]
    refused = page.evaluate(
        """async (taskId) => {
            const r = await fetch(location.pathname.replace('/r/', '/api/r/') + '/tasks/' + taskId, {
              method: 'POST', headers: {'Content-Type': 'application/json'},
              body: JSON.stringify({quality: {choice: 'left', reasons: []}, faithfulness: {choice: 'right', reasons: []}})});
            return [r.status, (await r.json()).error];
        }""",
        task_id,
    )
    assert refused[0] == 400 and "at least one reason" in refused[1]
    assert db_counts(study.db_path)["votes"] == 0

    # 4. With reasons it goes through and the next task appears.
    page.check("#reason-quality-pixel_sharpness")
    page.check("#reason-quality-motion_smoothness")
    page.check("#reason-faithfulness-temporal_alignment")
    assert page.locator("#error-quality").text_content() == ""
    page.click("#submit")
    page.wait_for_function(
        "(old) => document.getElementById('prompt').textContent !== old", arg=prompts_seen[0], timeout=15000
    )
    prompts_seen.append(_task_state(page))
    assert page.locator("#progress").text_content() == "Rated so far: 1"
    rows = _vote_rows(study)
    assert len(rows) == 1
    prompt, quality, faithfulness, left = rows[0]
    assert prompt == prompts_seen[0]
    assert quality == left and faithfulness != left  # left video for quality, right video for faithfulness
    assert page.locator("input:checked").count() == 0  # the form starts clean

    # 5. Stop and come back: the same task is waiting.
    page.reload()
    assert _task_state(page) == prompts_seen[1]

    # 6. Finish the remaining tasks.
    for _ in range(2):
        current = page.locator("#prompt").text_content()
        page.check("#choice-quality-right")
        page.check("#reason-quality-frame_consistency")
        page.check("#choice-faithfulness-right")
        page.check("#reason-faithfulness-spatial_alignment")
        page.click("#submit")
        page.wait_for_function(
            "(old) => document.getElementById('prompt').textContent !== old || !document.getElementById('done').hidden",
            arg=current,
            timeout=15000,
        )
        if page.locator("#done").is_hidden():
            prompts_seen.append(_task_state(page))
    page.wait_for_selector("#done:not([hidden])", timeout=15000)
    assert "no more videos" in page.locator("#done").text_content()
    assert len(_vote_rows(study)) == 3 and sorted(prompts_seen) == sorted(r[0] for r in _vote_rows(study))

    # A prompt with markup is shown as text, never run.
    assert EVIL_PROMPT in prompts_seen
    assert page.title() == "Video comparison"
    # The only console error is the deliberately refused request of step 3.
    assert [e for e in console_errors if "status of 400" not in e] == []
    page.close()


def test_screenshot_of_a_task(browser, study_and_server, tmp_path):
    study, token, base = study_and_server
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    page.goto(f"{base}/r/{token}")
    _task_state(page)
    page.wait_for_function("() => document.getElementById('video-left').readyState >= 2", timeout=15000)
    page.check("#choice-quality-left")
    page.check("#reason-quality-pixel_sharpness")
    shot = tmp_path / "task.png"
    page.screenshot(path=str(shot), full_page=True)
    from PIL import Image

    with Image.open(shot) as im:
        assert im.size[0] == 1280 and im.size[1] >= 900
        # Both video areas are painted (not blank): the red and the blue test videos are visible.
        px = list(im.convert("RGB").resize((64, 64)).get_flattened_data())
        assert any(r > 150 and b < 100 for r, g, b in px) and any(b > 150 and r < 100 for r, g, b in px)
    page.close()


def test_expired_task_is_refused_in_the_page(browser, tmp_path, serve):
    """A task left open past its lease goes to another rater; the late answer is refused and said so."""
    import time

    from juice_helpers import Client, tiny_pairs

    from emu_video.juice.study import make_study_from_files

    study = make_study_from_files(tmp_path / "root", "lease", tiny_pairs(tmp_path, 1), raters_per_pair=1)
    (_, slow), (_, fast) = study.add_raters(2)
    base = serve(study, lease_seconds=0.5)
    page = browser.new_page()
    page.goto(f"{base}/r/{slow}")
    _task_state(page)
    time.sleep(1.0)
    status, data = Client(base).json("GET", f"/api/r/{fast}/next")
    assert status == 200 and data["task"] is not None  # the slot moved to the other rater
    page.check("#choice-quality-left")
    page.check("#reason-quality-amount_of_motion")
    page.check("#choice-faithfulness-left")
    page.check("#reason-faithfulness-temporal_alignment")
    page.click("#submit")
    page.wait_for_selector("#notice:not([hidden])", timeout=15000)
    assert "not stored" in page.locator("#notice").text_content()
    assert "expired" in page.locator("#notice").text_content()
    page.wait_for_selector("#done:not([hidden])", timeout=15000)
    assert db_counts(study.db_path)["votes"] == 0
    page.close()


def test_admin_page_and_bad_links(browser, study_and_server):
    study, token, base = study_and_server
    page = browser.new_page()
    page.goto(f"{base}/admin/{study.admin_token}")
    page.wait_for_function("() => document.getElementById('votes').textContent.length > 0", timeout=15000)
    assert page.locator("#votes").text_content().startswith("0 of 15")
    assert page.locator("#raters tr").count() == 1
    assert "Ours" in page.locator("#systems").text_content()

    resp = page.goto(f"{base}/r/not-a-real-token-at-all")
    assert resp.status == 403 and "unknown access token" in page.content().lower()
    resp = page.goto(f"{base}/")
    assert resp.status == 401 and "personal link" in page.content()
    resp = page.goto(f"{base}/admin/{token}")
    assert resp.status == 403
    page.close()
