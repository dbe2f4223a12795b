"use strict";
(function () {
  const parts = location.pathname.split("/").filter(Boolean);
  const token = parts.length >= 2 ? parts[1] : "";
  const apiBase = "/api/r/" + encodeURIComponent(token);
  const $ = (id) => document.getElementById(id);
  let current = null;
  let builtQuestions = null;
  let busy = false;

  function show(id) {
    for (const s of ["loading", "task", "done", "fatal"]) $(s).hidden = s !== id;
  }

  function toast(text) {
    const t = $("toast");
    t.textContent = text;
    t.hidden = false;
    clearTimeout(toast.timer);
    toast.timer = setTimeout(() => { t.hidden = true; }, 1800);
  }

  async function request(method, path, body) {
    const opts = { method, headers: { Accept: "application/json" }, cache: "no-store" };
    if (body !== undefined) {
      opts.headers["Content-Type"] = "application/json";
      opts.body = JSON.stringify(body);
    }
    const res = await fetch(apiBase + path, opts);
    let data = null;
    try { data = await res.json(); } catch (e) { data = null; }
    return { status: res.status, ok: res.ok, data };
  }

  function el(tag, attrs, text) {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, v);
    if (text !== undefined) e.textContent = text;
    return e;
  }

  function buildQuestions(questions) {
    if (builtQuestions) return;
    builtQuestions = questions;
    const box = $("questions");
    const help = $("help-reasons");
    questions.forEach((q, qi) => {
      const fs = el("fieldset", { class: "question panel", id: "q-" + q.axis, "data-axis": q.axis });
      fs.appendChild(el("legend", {}, (qi + 1) + ". " + q.text));
      const choices = el("div", { class: "choices", role: "radiogroup" });
      for (const side of ["left", "right"]) {
        const id = `choice-${q.axis}-${side}`;
        const input = el("input", { type: "radio", name: `choice-${q.axis}`, id, value: side });
        const label = el("label", { for: id, class: "choice" });
        label.appendChild(input);
        label.appendChild(el("span", {}, side === "left" ? "Left video" : "Right video"));
        choices.appendChild(label);
      }
      fs.appendChild(choices);
      fs.appendChild(el("p", { class: "sub" }, q.reasons_prompt));
      const reasons = el("div", { class: "reasons" });
      for (const r of q.reasons) {
        const id = `reason-${q.axis}-${r.key}`;
        const label = el("label", { for: id, class: "reason", title: r.help });
        label.appendChild(el("input", { type: "checkbox", id, name: `reasons-${q.axis}`, value: r.key }));
        label.appendChild(el("span", {}, r.label));
        reasons.appendChild(label);
        help.appendChild(el("dt", {}, r.label));
        help.appendChild(el("dd", {}, r.help));
      }
      fs.appendChild(reasons);
      fs.appendChild(el("p", { class: "error", id: "error-" + q.axis, role: "alert" }));
      box.appendChild(fs);
    });
    box.addEventListener("change", () => clearErrors(true));
  }

  function clearErrors(onlyResolved) {
    for (const q of builtQuestions || []) {
      const a = answerOf(q);
      if (!onlyResolved || (a.choice && a.reasons.length)) {
        $("error-" + q.axis).textContent = "";
        $("q-" + q.axis).classList.remove("invalid");
      }
    }
    if (!onlyResolved) $("form-error").textContent = "";
  }

  function answerOf(q) {
    const chosen = document.querySelector(`input[name="choice-${q.axis}"]:checked`);
    const reasons = Array.from(document.querySelectorAll(`input[name="reasons-${q.axis}"]:checked`)).map((i) => i.value);
    return { choice: chosen ? chosen.value : null, reasons };
  }

  function resetForm() {
    $("form").reset();
    clearErrors(false);
  }

  function setProgress(progress) {
    if (!progress) return;
    $("progress").textContent = `Rated so far: ${progress.done}`;
  }

  function render(data) {
    buildQuestions(data.questions);
    setProgress(data.progress);
    if (!data.task) {
      current = null;
      for (const side of ["left", "right"]) {
        const v = $("video-" + side);
        v.removeAttribute("src");
        v.load();
      }
      show("done");
      return;
    }
    const fresh = !current || current.id !== data.task.id;
    current = data.task;
    if (fresh) {
      resetForm();
      $("prompt").textContent = data.task.prompt;
      for (const side of ["left", "right"]) {
        const v = $("video-" + side);
        if (data.task.width && data.task.height) {
          v.width = data.task.width;
          v.height = data.task.height;
        }
        v.src = apiBase + "/video/" + encodeURIComponent(data.task[side].video);
      }
      window.scrollTo(0, 0);
    }
    show("task");
  }

  function notice(text) {
    $("notice").textContent = text || "";
    $("notice").hidden = !text;
  }

  function fatal(text) {
    $("fatal-text").textContent = text;
    show("fatal");
  }

  async function loadNext() {
    try {
      const res = await request("GET", "/next");
      if (!res.ok) {
        fatal((res.data && res.data.error) || `The server answered ${res.status}.`);
        return;
      }
      render(res.data);
    } catch (e) {
      fatal("Cannot reach the server. Check your connection and try again.");
    }
  }

  async function submit(ev) {
    ev.preventDefault();
    if (busy || !current) return;
    clearErrors(false);
    const body = {};
    let ok = true;
    for (const q of builtQuestions) {
      const a = answerOf(q);
      let msg = "";
      if (!a.choice) msg = "Pick the left or the right video.";
      else if (!a.reasons.length) msg = "Tick at least one factor that made you choose this video.";
      if (msg) {
        ok = false;
        $("error-" + q.axis).textContent = msg;
        $("q-" + q.axis).classList.add("invalid");
      }
      body[q.axis] = a;
    }
    if (!ok) {
      $("form-error").textContent = "Not submitted: answer both questions, with at least one factor each.";
      const first = document.querySelector(".question.invalid");
      if (first) first.scrollIntoView({ behavior: "smooth", block: "center" });
      return;
    }
    busy = true;
    $("submit").disabled = true;
    try {
      const res = await request("POST", "/tasks/" + encodeURIComponent(current.id), body);
      if (res.ok) {
        notice("");
        toast(res.data && res.data.status === "duplicate" ? "Already saved" : "Saved");
        setProgress(res.data && res.data.progress);
        await loadNext();
      } else if (res.status === 409) {
        const why = (res.data && res.data.error) || "This task is no longer yours.";
        await loadNext();
        notice("Your last answer was not stored: " + why);
      } else {
        $("form-error").textContent = "Not submitted: " + ((res.data && res.data.error) || `the server answered ${res.status}`);
      }
    } catch (e) {
      $("form-error").textContent = "Not submitted: cannot reach the server. Your answers are still here; try again.";
    } finally {
      busy = false;
      $("submit").disabled = false;
    }
  }

  document.addEventListener("DOMContentLoaded", () => {
    $("form").addEventListener("submit", submit);
    $("retry").addEventListener("click", () => { show("loading"); loadNext(); });
    $("replay").addEventListener("click", () => {
      for (const side of ["left", "right"]) {
        const v = $("video-" + side);
        v.currentTime = 0;
        const p = v.play();
        if (p && p.catch) p.catch(() => {});
      }
    });
    loadNext();
  });
})();
