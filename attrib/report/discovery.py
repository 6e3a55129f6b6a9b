"""The HTML page of ``attrib discover --report FILE``: one section per candidate with a grid of its most
typical images (thumbnails inlined as ``data:`` URIs, no scripts, no network), built from
:mod:`.html`'s blocks for a :class:`attrib.discovery.candidates.Discovery`."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..discovery.candidates import GENERATOR, Candidate, Discovery
from .html import THUMB_PX, esc, image_tag, page, placeholder, preview_bytes, table, write_page


def _figure(member: dict[str, Any], source: Path | None) -> str:
    preview = preview_bytes(source, THUMB_PX) if source is not None else None
    name = Path(member["path"]).name
    picture = image_tag(*preview, alt=name, css="thumb") if preview else placeholder("no preview")
    return (f'<figure>{picture}<figcaption>{esc(name)}<br><span class="muted">held-out '
            f'{member["held_out"]:.3f}</span></figcaption></figure>')


def _section(candidate: Candidate, files: dict[str, Path]) -> str:
    label = ("candidate generator" if candidate.kind == GENERATOR
             else "photographs (camera photos: not offered as a generator)")
    css = "known" if candidate.kind == GENERATOR else "ambiguous"
    photo = candidate.photo
    cameras = ", ".join(f"{name} ({n})" for name, n in photo.cameras.items()) or "none named"
    facts = table(["images", "tightness", "novelty", "nearest enrolled", "strength", "camera EXIF",
                   "photo-like (cohort)", "photo-like (references)"],
                  [[len(candidate.members), f"{candidate.tightness:+.3f}",
                    "" if candidate.novelty is None else f"{candidate.novelty:+.3f}", candidate.nearest or "",
                    f"{candidate.strength:.2f}", f"{photo.with_camera} ({cameras})",
                    "no extractor judges" if photo.cohort_like is None else photo.cohort_like,
                    "no references" if photo.photo_like is None else photo.photo_like]], numeric={0, 1, 2, 4})
    grid = "".join(_figure(m, files.get(m["path"])) for m in candidate.exemplars())
    return (f'<section class="query"><div class="body"><h2>{esc(candidate.id)}: <span class="decision {css}">'
            f"{esc(label)}</span></h2>{facts}<p class=\"muted\">digest {esc(candidate.digest)}; enroll with "
            f"<code>attrib discover --enroll {esc(candidate.id)} --generator NAME --from CANDIDATES.json</code></p>"
            f'<div class="exemplars">{grid}</div></div></section>')


def _judges(shares: dict[str, float]) -> str:
    from ..discovery.photos import COHORT_JUDGE

    judging = [key for key, share in shares.items() if share >= COHORT_JUDGE]
    return ", ".join(judging) or f"no extractor (none tells the cohort's photographs apart at {COHORT_JUDGE:g})"


def discovery_page(discovery: Discovery) -> str:
    """The whole page for ``discovery``."""
    data = discovery.to_json()
    counts = data["counts"]
    files = {image.path: image.file or Path(image.path) for image in discovery.pool.images}
    summary = table(["images", "candidate generators", "photographs", "in candidates", "beside an enrolled generator",
                     "let go", "one-offs", "unusable files"],
                    [[data["images"], counts["candidates"], counts["photographs"], counts["in_candidates"],
                      counts["near_enrolled"], counts["let_go"], counts["one_offs"], len(data["errors"])]],
                    numeric=set(range(8)))
    let_go = table(["why", "images"], [[why, len(paths)] for why, paths in data["let_go"].items()], numeric={1})
    sections = "".join(_section(c, files) for c in discovery.candidates) or "<p>No candidate: no group of unknown " \
        "images is tight enough and far enough from the enrolled generators.</p>"
    body = (f"<h1>attrib discover: {esc(counts['candidates'])} candidate generator(s)</h1>"
            f"<p class=\"muted\">extractor {esc(data['extractor'])}; reference threshold {data['reference']:.3f}; "
            f"settings {esc(data['settings'])}; photographs judged against the cohort by "
            f"{esc(_judges(data['photo_judges']))}</p>{summary}"
            f"<h2>Images in no candidate</h2>{let_go}{sections}")
    return page("attrib discover", body)


def write_discovery_page(discovery: Discovery, path: Path) -> Path:
    return write_page(path, discovery_page(discovery))
