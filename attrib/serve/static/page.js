// The attrib page: identify dropped or chosen images, browse the gallery, enroll and remove with the token.
// Every value from the server or a file name is shown with textContent (never parsed as HTML).
"use strict";

(function () {
  const TOKEN_KEY = "attrib-token";
  const PER_REQUEST = 8; // images sent in one identify request
  const THUMBS_PER_REQUEST = 64;
  const $ = (id) => document.getElementById(id);
  const {el, signed} = window.attribDom; // dom.js
  const previews = [];
  let identifyRun = 0; // a newer choice of images replaces the answers of an older one

  // --- building elements ------------------------------------------------------------------------------


  function fixed(value, digits) {
    return typeof value === "number" && isFinite(value) ? value.toFixed(digits) : "–";
  }


  function baseName(path) {
    const text = String(path || "");
    return text.split(/[\\/]/).pop() || text;
  }

  function say(id, text, kind) {
    const node = $(id);
    node.textContent = text;
    node.className = kind || "";
  }

  // The score against the threshold: a filled bar (solid when the score reaches the threshold, hatched
  // when below) and a tick at the threshold; the same in words for assistive technology.
  function scoreBar(score, threshold) {
    const low = Math.min(0, score, threshold);
    const high = Math.max(1, score, threshold);
    const at = (value) => (100 * Math.max(0, Math.min(1, (value - low) / ((high - low) || 1)))).toFixed(1) + "%";
    const reaches = score >= threshold;
    const words = `score ${fixed(score, 3)} ${reaches ? "at or above" : "below"} threshold ${fixed(threshold, 3)}`;
    const fill = el("span", {class: reaches ? "fill above" : "fill below"});
    const tick = el("span", {class: "tick"});
    fill.style.width = at(score);
    tick.style.left = at(threshold);
    return el("span", {class: "bar", role: "img", "aria-label": words, title: words}, fill, tick);
  }

  function placeholder(text) {
    return el("span", {class: "placeholder", text: text});
  }

  // --- talking to the server ------------------------------------------------------------------------------

  function token() {
    return $("token").value.trim();
  }

  function call(method, url, body) {
    return window.attribDom.call(method, url, body, token());
  }

  // --- the token: in the field, and in sessionStorage only when asked ----------------------------------

  function storage() {
    try {
      return window.sessionStorage;
    } catch (error) {
      return null;
    }
  }

  function keepToken() {
    const store = storage();
    if (!store) return;
    if ($("keep-token").checked && token()) store.setItem(TOKEN_KEY, token());
    else store.removeItem(TOKEN_KEY);
  }

  function restoreToken() {
    const store = storage();
    const kept = store ? store.getItem(TOKEN_KEY) : null;
    if (kept) {
      $("token").value = kept;
      $("keep-token").checked = true;
    }
  }

  // --- identify -----------------------------------------------------------------------------------------

  function decisionClass(record) {
    const level = record.decision_level;
    if (!level || level === "unknown") return "unknown";
    return level === "ambiguous" ? "ambiguous" : "known";
  }

  function deliveryWords(delivery) {
    const version = delivery.version === "original" ? "originals" : `${delivery.version} version`;
    let words = `delivered as ${delivery.describe}; scored against the gallery's ${version}`;
    if (Array.isArray(delivery.originals_for) && delivery.originals_for.length) {
      words += ` (and the originals of ${delivery.originals_for.join(", ")}, whose files were coded the same way)`;
    }
    return words;
  }

  function evidenceBlock(record) {
    const block = el("div", {class: "evidence"}, el("h4", {text: "What the file says"}));
    const provenance = record.provenance || {};
    const items = Array.isArray(record.evidence) ? record.evidence : [];
    if (provenance.summary) {
      const agrees = (provenance.agreement || {}).agrees;
      const verdict = agrees === true ? " (agrees with the forensic answer)"
        : agrees === false ? " (differs from the forensic answer)" : "";
      block.append(el("p", {text: `The file says: ${provenance.summary}${verdict}`}));
    }
    if (!items.length) {
      if (!provenance.summary) block.append(el("p", {class: "muted", text: "The file says nothing about its origin."}));
      return block;
    }
    const list = el("ul");
    for (const item of items) {
      const what = item.label || item.generator || "";
      const signature = item.verified ? ` [signature ${item.verified}]` : "";
      list.append(el("li", {}, el("b", {text: item.kind}), ` ${what}${signature}: `,
        el("span", {class: "muted", text: item.error || item.claim || ""})));
    }
    block.append(list);
    return block;
  }

  function exemplarFigure(exemplar) {
    const name = baseName(exemplar.path) || String(exemplar.sha256 || "").slice(0, 12);
    const slot = el("span", {class: "thumb-slot", "data-sha256": exemplar.sha256 || ""},
      placeholder(name));
    return el("li", {}, el("figure", {}, slot,
      el("figcaption", {}, el("span", {text: `similarity ${fixed(exemplar.similarity, 3)}`}), el("br"),
        el("span", {class: "muted name", title: `${exemplar.path || ""} sha256 ${exemplar.sha256 || ""}`, text: name}))));
  }

  function candidateItem(candidate) {
    const family = candidate.family ? ` (${candidate.family})` : "";
    const item = el("li", {class: "candidate"},
      el("p", {}, el("b", {text: candidate.generator + family}),
        `: score ${fixed(candidate.score, 3)}, threshold ${fixed(candidate.threshold, 3)}, ` +
        `margin ${signed(candidate.margin)}, confidence ${fixed(candidate.confidence, 2)}`),
      scoreBar(candidate.score, candidate.threshold));
    const exemplars = Array.isArray(candidate.exemplars) ? candidate.exemplars : [];
    if (exemplars.length) {
      item.append(el("p", {class: "muted", text: "Nearest enrolled samples:"}),
        el("ul", {class: "exemplars"}, ...exemplars.map(exemplarFigure)));
    }
    return item;
  }

  function resultArticle(record, file) {
    const name = record.path || (file && file.name) || "";
    const article = el("article", {class: "result", "aria-label": `answer for ${name}`});
    const preview = el("div", {class: "preview"});
    if (file) {
      const url = URL.createObjectURL(file);
      previews.push(url);
      preview.append(el("img", {src: url, alt: `the image ${name}`}));
    } else {
      preview.append(placeholder(name));
    }
    const body = el("div", {class: "body"}, el("h3", {class: "name", text: name}));
    article.append(preview, body);
    if (record.error) {
      body.append(el("p", {class: "error", text: `error: ${record.error}`}));
      if (Array.isArray(record.evidence)) body.append(evidenceBlock(record));
      return article;
    }
    const confidence = typeof record.confidence === "number" ? ` — confidence ${fixed(record.confidence, 2)}` : "";
    body.append(
      el("p", {class: "verdict"}, el("span", {class: "decision " + decisionClass(record), text: record.decision}),
        confidence),
      el("p", {class: "reason", text: record.reason}),
      el("p", {}, `${record.nearest || "nearest"}: `, scoreBar(record.score, record.threshold),
        ` score ${fixed(record.score, 3)} against threshold ${fixed(record.threshold, 3)} (margin ${signed(record.margin)})`));
    if (record.decided_by && record.decided_by !== "forensic") {
      body.append(el("p", {text: `Decided by the file's ${record.decided_by} evidence.`}));
    }
    if (record.delivery) body.append(el("p", {class: "muted delivery", text: deliveryWords(record.delivery)}));
    body.append(el("p", {class: "muted", text: `sha256 ${record.sha256}; extractor ${record.extractor}`}));
    const explained = record.explain && Array.isArray(record.explain.candidates) ? record.explain.candidates : null;
    const candidates = explained || (Array.isArray(record.candidates) ? record.candidates : []);
    if (candidates.length) {
      body.append(el("h4", {text: "Candidates"}), el("ol", {class: "candidates"}, ...candidates.map(candidateItem)));
    }
    const flags = record.explain && Array.isArray(record.explain.flags) ? record.explain.flags : [];
    if (flags.length) body.append(el("ul", {class: "flags"}, ...flags.map((f) => el("li", {class: "flag", text: f}))));
    body.append(evidenceBlock(record));
    return article;
  }

  async function fillThumbnails(container) {
    const slots = Array.from(container.querySelectorAll(".thumb-slot[data-sha256]"))
      .filter((slot) => /^[0-9a-f]{64}$/.test(slot.dataset.sha256));
    const wanted = Array.from(new Set(slots.map((slot) => slot.dataset.sha256)));
    for (let start = 0; start < wanted.length; start += THUMBS_PER_REQUEST) {
      const query = new URLSearchParams();
      for (const sha of wanted.slice(start, start + THUMBS_PER_REQUEST)) query.append("sha256", sha);
      const answer = await call("GET", "/page/thumbnails?" + query.toString());
      const found = answer.ok && answer.data && answer.data.thumbnails ? answer.data.thumbnails : {};
      for (const slot of slots) {
        const url = found[slot.dataset.sha256];
        if (typeof url === "string" && url.startsWith("data:image/")) {
          const label = slot.textContent;
          slot.replaceChildren(el("img", {class: "thumb", src: url, alt: `enrolled sample ${label}`}));
        }
      }
    }
  }

  function clearResults() {
    for (const url of previews.splice(0)) URL.revokeObjectURL(url);
    $("results").replaceChildren();
  }

  async function identify(files) {
    const images = Array.from(files || []);
    if (!images.length) {
      say("identify-status", "Choose one or more images first.", "error");
      return;
    }
    const run = ++identifyRun;
    const topK = Math.max(1, Math.min(100, parseInt($("top-k").value, 10) || 3));
    clearResults();
    $("results").setAttribute("aria-busy", "true");
    const counts = new Map();
    let failed = null;
    for (let start = 0; start < images.length; start += PER_REQUEST) {
      const chunk = images.slice(start, start + PER_REQUEST);
      say("identify-status", `Identifying ${start + 1}–${start + chunk.length} of ${images.length}…`);
      const form = new FormData();
      for (const file of chunk) form.append("files", file, file.name);
      form.append("top_k", String(topK));
      const answer = await call("POST", "/v1/identify", form);
      if (run !== identifyRun) return;
      const records = answer.data && Array.isArray(answer.data.results) ? answer.data.results : null;
      if (!records) {
        failed = answer.problem;
        break;
      }
      const articles = records.map((record, i) => resultArticle(record, chunk[i]));
      $("results").append(...articles);
      for (const record of records) {
        const key = record.error ? "error" : String(record.decision);
        counts.set(key, (counts.get(key) || 0) + 1);
      }
      for (const article of articles) fillThumbnails(article);
    }
    $("results").setAttribute("aria-busy", "false");
    const summary = Array.from(counts).map(([key, n]) => `${key} ${n}`).join(", ");
    if (failed) {
      say("identify-status", `Could not identify: ${failed}` + (summary ? ` (answered so far: ${summary})` : ""), "error");
    } else {
      say("identify-status", `Identified ${images.length} image${images.length === 1 ? "" : "s"}: ${summary}.`);
    }
  }

  // --- gallery ------------------------------------------------------------------------------------------

  function sampleFigure(sample, threshold) {
    const name = baseName(sample.path);
    const picture = typeof sample.thumbnail === "string" && sample.thumbnail.startsWith("data:image/")
      ? el("img", {class: "thumb", src: sample.thumbnail, alt: `sample ${name}`}) : placeholder(name);
    const caption = el("figcaption", {}, el("span", {class: "name", title: `${sample.path} sha256 ${sample.sha256}`, text: name}));
    if (typeof sample.held_out === "number") {
      const below = typeof threshold === "number" && sample.held_out < threshold;
      caption.append(el("br"), el("span", {class: below ? "held-out below" : "held-out",
        text: `held-out ${fixed(sample.held_out, 3)}${below ? " (below the threshold)" : ""}`}));
    }
    return el("li", {}, el("figure", {}, picture, caption));
  }

  async function showSamples(name, button, panel) {
    const open = button.getAttribute("aria-expanded") === "true";
    button.setAttribute("aria-expanded", String(!open));
    panel.hidden = open;
    if (open || panel.dataset.loaded === "yes") return;
    panel.replaceChildren(el("p", {role: "status", text: "Loading its samples…"}));
    const answer = await call("GET", "/page/generators/" + encodeURIComponent(name) + "?limit=60");
    if (!answer.ok) {
      panel.replaceChildren(el("p", {class: "error", role: "status", text: `Could not load ${name}: ${answer.problem}`}));
      return;
    }
    const detail = answer.data;
    const samples = Array.isArray(detail.samples) ? detail.samples : [];
    const scored = samples.filter((s) => typeof s.held_out === "number");
    const below = scored.filter((s) => typeof detail.threshold === "number" && s.held_out < detail.threshold).length;
    const intro = typeof detail.threshold === "number" && scored.length
      ? `Held-out scores under ${detail.extractor}, threshold ${fixed(detail.threshold, 3)}: ${below} of ${scored.length} below it.`
      : "No held-out scores yet (a generator needs two samples and a current index).";
    const shown = detail.total > samples.length ? ` Showing the first ${samples.length} of ${detail.total} samples.` : "";
    panel.replaceChildren(el("p", {class: "muted", text: intro + shown}),
      el("ul", {class: "grid"}, ...samples.map((s) => sampleFigure(s, detail.threshold))));
    panel.dataset.loaded = "yes";
  }

  function generatorCard(info) {
    const panelId = "samples-" + Math.random().toString(36).slice(2);
    const button = el("button", {type: "button", "aria-expanded": "false", "aria-controls": panelId,
      text: `Show the samples of ${info.name}`});
    const panel = el("div", {id: panelId, class: "samples", hidden: true});
    button.addEventListener("click", () => showSamples(info.name, button, panel));
    const facts = [`${info.samples} sample${info.samples === 1 ? "" : "s"}`,
      info.family ? `family ${info.family}` : null,
      typeof info.threshold === "number" ? `threshold ${fixed(info.threshold, 3)}` : "not calibrated yet",
      info.created_at ? `enrolled ${info.created_at}` : null].filter(Boolean).join("; ");
    return el("li", {class: "generator"}, el("h3", {text: info.name}), el("p", {text: facts}),
      info.note ? el("p", {class: "muted", text: `note: ${info.note}`}) : null, button, panel);
  }

  async function loadGallery() {
    say("gallery-status", "Loading the gallery…");
    const answer = await call("GET", "/v1/generators");
    const list = answer.ok && answer.data && Array.isArray(answer.data.generators) ? answer.data.generators : null;
    if (!list) {
      say("gallery-status", `Could not list the generators: ${answer.problem}`, "error");
      return;
    }
    $("generators").replaceChildren(...list.map(generatorCard));
    const select = $("remove-generator");
    const chosen = select.value;
    select.replaceChildren(...list.map((g) => el("option", {value: g.name, text: `${g.name} (${g.samples})`})));
    if (list.some((g) => g.name === chosen)) select.value = chosen;
    say("gallery-status", list.length ? `${list.length} generator${list.length === 1 ? "" : "s"} enrolled.`
      : "No generator is enrolled yet: enroll some below.");
  }

  // --- enroll and remove --------------------------------------------------------------------------------

  async function enroll(event) {
    event.preventDefault();
    const form = event.currentTarget;
    const generator = $("enroll-generator").value.trim();
    const files = Array.from($("enroll-files").files || []);
    if (!generator || !files.length) {
      say("enroll-status", "Give a generator name and at least one image.", "error");
      return;
    }
    const body = new FormData();
    body.append("generator", generator);
    for (const field of ["family", "note"]) {
      const value = form.elements[field].value.trim();
      if (value) body.append(field, value);
    }
    for (const file of files) body.append("files", file, file.name);
    say("enroll-status", `Enrolling ${files.length} image${files.length === 1 ? "" : "s"} under ${generator}…`);
    const answer = await call("POST", "/v1/enroll", body);
    const summary = answer.data && Array.isArray(answer.data.added) ? answer.data : null;
    if (!summary) {
      say("enroll-status", `Could not enroll: ${answer.problem}`, "error");
      return;
    }
    const parts = [`Enrolled ${summary.added.length} under ${summary.generator}`];
    if (summary.skipped.length) parts.push(`${summary.skipped.length} already enrolled`);
    if (summary.failed.length) parts.push(`${summary.failed.length} failed (${summary.failed[0].path}: ${summary.failed[0].error})`);
    say("enroll-status", parts.join("; ") + `. ${summary.calibration}`, answer.ok ? "" : "error");
    if (answer.ok) form.reset();
    await loadGallery();
  }

  async function remove(event) {
    event.preventDefault();
    const name = $("remove-generator").value;
    if (!name) {
      say("remove-status", "No generator to remove.", "error");
      return;
    }
    if (!window.confirm(`Remove ${name} and all its samples from the gallery?`)) {
      say("remove-status", `${name} was kept.`);
      return;
    }
    const answer = await call("DELETE", "/v1/generators/" + encodeURIComponent(name));
    if (!answer.ok) {
      say("remove-status", `Could not remove ${name}: ${answer.problem}`, "error");
      return;
    }
    say("remove-status", `Removed ${answer.data.removed} and its ${answer.data.samples} samples.`);
    await loadGallery();
  }

  // --- start ------------------------------------------------------------------------------------------

  async function health() {
    const answer = await call("GET", "/v1/health");
    if (answer.ok && answer.data) {
      say("health", `Server up: attrib ${answer.data.version}, extractor ${answer.data.extractor}.`, "muted");
    } else if (answer.status === 401 || answer.status === 403) {
      say("health", `This server needs its token for reads too: enter it under "Enroll and remove". (${answer.problem})`, "error");
    } else {
      say("health", `The server is not answering as expected: ${answer.problem}`, "error");
    }
  }

  function setUp() {
    restoreToken();
    $("token").addEventListener("input", keepToken);
    $("token").addEventListener("change", () => {
      health();
      loadGallery();
    });
    $("keep-token").addEventListener("change", keepToken);
    $("forget-token").addEventListener("click", () => {
      $("token").value = "";
      $("keep-token").checked = false;
      keepToken();
      $("token").focus();
    });
    $("token-form").addEventListener("submit", (event) => event.preventDefault());

    const input = $("identify-files");
    input.addEventListener("change", () => identify(input.files));
    $("identify-form").addEventListener("submit", (event) => {
      event.preventDefault();
      identify(input.files);
    });
    const drop = $("drop");
    for (const type of ["dragenter", "dragover"]) {
      drop.addEventListener(type, (event) => {
        event.preventDefault();
        drop.classList.add("over");
      });
    }
    drop.addEventListener("dragleave", () => drop.classList.remove("over"));
    drop.addEventListener("drop", (event) => {
      event.preventDefault();
      drop.classList.remove("over");
      identify(event.dataTransfer ? event.dataTransfer.files : []);
    });
    // a file dropped beside the drop area must not replace the page
    window.addEventListener("dragover", (event) => event.preventDefault());
    window.addEventListener("drop", (event) => event.preventDefault());

    $("gallery-refresh").addEventListener("click", loadGallery);
    $("enroll-form").addEventListener("submit", enroll);
    $("remove-form").addEventListener("submit", remove);
    health();
    loadGallery();
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", setUp);
  else setUp();
})();
