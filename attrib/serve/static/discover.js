// The discover page: the server's recent unknown answers grouped into candidates, each with its thumbnails;
// with the token, a candidate generator can be enrolled under a name. Every value from the server is shown
// with textContent (never parsed as HTML).
"use strict";

(function () {
  const TOKEN_KEY = "attrib-token"; // the main page keeps the token here for the tab, when asked to
  const $ = (id) => document.getElementById(id);
  const {el, signed} = window.attribDom; // dom.js



  function say(id, text, kind) {
    const node = $(id);
    node.textContent = text;
    node.className = kind || "";
  }

  function token() {
    return $("token").value.trim();
  }

  function call(method, url, body) {
    return window.attribDom.call(method, url, body, token());
  }

  function memberFigure(member) {
    const name = String(member.path || "");
    const picture = typeof member.thumbnail === "string" && member.thumbnail.startsWith("data:image/")
      ? el("img", {class: "thumb", src: member.thumbnail, alt: `unknown upload ${name}`})
      : el("span", {class: "placeholder", text: name || "no preview"});
    return el("li", {}, el("figure", {}, picture,
      el("figcaption", {}, el("span", {class: "name", text: name}), el("br"),
        el("span", {class: "muted", text: `held-out ${typeof member.held_out === "number" ? member.held_out.toFixed(3) : "–"}` +
          (member.enrollable ? "" : " (not kept: cannot be enrolled here)")}))));
  }

  function enrollForm(candidate) {
    const id = "name-" + candidate.digest;
    const status = el("p", {role: "status", "aria-live": "polite"});
    const input = el("input", {id, name: "generator", type: "text", required: true, autocomplete: "off"});
    const form = el("form", {class: "panel"},
      el("label", {for: id, text: `Enroll ${candidate.id} as`}), input,
      el("button", {type: "submit", text: "Enroll"}), status);
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      const body = new FormData();
      body.append("candidate", candidate.digest);
      body.append("generator", input.value.trim());
      status.textContent = "Enrolling…";
      const answer = await call("POST", "/v1/discover/enroll", body);
      if (!answer.ok) {
        status.textContent = answer.problem;
        status.className = "error";
        return;
      }
      const left = answer.data.not_kept.length ? `; ${answer.data.not_kept.length} no longer kept` : "";
      status.textContent = `Enrolled ${answer.data.added.length} images as ${answer.data.generator}${left}.`;
      status.className = "";
    });
    return form;
  }

  function photoSigns(photo) {
    if (!photo) return "none read";
    const parts = [`camera EXIF ${photo.with_camera_exif}`, photo.photo_like_cohort == null
      ? "against the cohort: no extractor judges" : `photo-like against the cohort ${photo.photo_like_cohort}`];
    if (photo.photo_like != null) parts.push(`near the reference photographs ${photo.photo_like}`);
    return parts.join("; ");
  }

  function candidateSection(candidate) {
    const generator = candidate.kind === "generator";
    const label = generator ? "candidate generator" : "photographs (camera photos: not offered as a generator)";
    const members = Array.isArray(candidate.members) ? candidate.members : [];
    const section = el("article", {class: "generator", "aria-label": `${candidate.id}: ${label}`},
      el("h3", {}, `${candidate.id}: `, el("span", {class: generator ? "decision known" : "decision ambiguous",
        text: label})),
      el("p", {text: `${candidate.size} images; tightness ${signed(candidate.tightness)}, novelty ` +
        `${signed(candidate.novelty)}; nearest enrolled ${candidate.nearest_enrolled || "–"}`}),
      el("p", {class: "muted", text: `members showing a photograph sign: ${photoSigns(candidate.photo)}; ` +
        `digest ${candidate.digest}`}),
      el("ul", {class: "grid"}, ...members.map(memberFigure)));
    if (generator) section.append(enrollForm(candidate));
    return section;
  }

  async function refresh(event) {
    if (event) event.preventDefault();
    say("discover-status", "Grouping the unknown answers…");
    const answer = await call("GET", "/v1/discover?thumbnails=true");
    if (!answer.ok) {
      say("discover-status", answer.problem, "error");
      $("candidates").replaceChildren();
      return;
    }
    const data = answer.data;
    const counts = data.counts || {};
    say("discover-status", `${data.images} unknown answers kept (at most ${data.answers.limit}): ` +
      `${counts.candidates} candidate generator(s), ${counts.photographs} group(s) of photographs, ` +
      `${counts.one_offs} one-offs.`);
    $("candidates").replaceChildren(...(data.candidates || []).map(candidateSection));
  }

  function start() {
    try {
      const kept = window.sessionStorage.getItem(TOKEN_KEY);
      if (kept) $("token").value = kept;
    } catch (error) {
      // no session storage: the token is typed here
    }
    $("token-form").addEventListener("submit", refresh);
    if (token()) {
      refresh();
    } else {  // the kept answers are other clients' uploads: the server shows them to the token only
      say("discover-status", "Enter the server's token to see the kept unknown answers.");
    }
  }

  document.addEventListener("DOMContentLoaded", start);
})();
