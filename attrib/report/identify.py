"""The identify report: a summary table (a row per query: file, decision, confidence, nearest, delivery)
then, per query, a compact section: its preview, decision and confidence, the top candidates (a row each:
the score against the threshold, the nearest enrolled exemplars as thumbnails), what the file says about
its origin, and the flags.

:class:`IdentifyReport` collects results as a command streams them; :meth:`IdentifyReport.write`
fetches the exemplars' thumbnails from the gallery (``Gallery.thumbnails`` where the gallery has
it, else the exemplar's stored path, else a placeholder naming the path) and writes the page.
"""

from __future__ import annotations

import datetime as _dt
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterable, Iterator

from .html import (PREVIEW_PX, THUMB_PX, esc, image_tag, name_html, page, path_html, placeholder, preview_bytes,
                   score_bar, write_page)

if TYPE_CHECKING:
    from ..gallery import Gallery
    from ..scoring.decision import Candidate, IdentificationResult


def exemplar_images(gallery: Gallery | None, sha256_paths: dict[str, str | None]) -> dict[str, tuple[bytes, str]]:
    """``{sha256: (image bytes, mime)}`` for the exemplars the gallery or their files can show."""
    found: dict[str, tuple[bytes, str]] = {}
    if gallery is not None and hasattr(gallery, "thumbnails") and sha256_paths:
        for sha, data in (gallery.thumbnails(list(sha256_paths)) or {}).items():
            if data:
                found[sha] = (data, "image/webp")
    for sha, path in sha256_paths.items():
        if sha not in found and path and Path(path).is_file():
            made = preview_bytes(Path(path), THUMB_PX)
            if made is not None:
                found[sha] = made
    return found


def exemplar_figure(exemplar: dict[str, Any], images: dict[str, tuple[bytes, str]]) -> str:
    """A nearest enrolled sample: its thumbnail (else a placeholder naming its path), its similarity and
    its file name (the whole path and sha256 as the tooltip)."""
    sha, path = exemplar.get("sha256") or "", exemplar.get("path") or ""
    shown = images.get(sha)
    picture = image_tag(*shown, alt=path, css="thumb") if shown else placeholder(path or sha[:12])
    return (f'<figure title="{esc(path)} sha256 {esc(sha)}">{picture}<figcaption>'
            f'{float(exemplar.get("similarity", 0)):.3f}<br><span class="muted">{name_html(path)}</span>'
            "</figcaption></figure>")


def delivery_words(delivery: dict[str, Any]) -> str:
    """``delivered as JPEG q≈80; scored against the gallery's jpeg:80 version (originals: ...)``."""
    version = delivery["version"]
    words = f"delivered as {delivery['describe']}; scored against the gallery's " + (
        "originals" if version == "original" else f"{version} version")
    alike = delivery.get("originals_for")
    return words + (f" (and the originals of {', '.join(alike)}, whose files were coded the same way)" if alike else "")


def decision_class(result: IdentificationResult) -> str:
    if result.decision_level in (None, "unknown"):
        return "unknown"
    return "ambiguous" if result.decision_level == "ambiguous" else "known"


SUMMARY_PREFIX = "file says: "  # how :func:`attrib.evidence.combine.summary_line` begins


def evidence_html(result: IdentificationResult) -> str:
    items = []
    for item in result.evidence:
        what = item.get("label") or item.get("generator") or ""
        signed = f" [signature {item['verified']}]" if item.get("verified") else ""
        text = item.get("error") or item.get("claim") or ""
        items.append(f"<li><b>{esc(item.get('kind'))}</b> {esc(what)}{esc(signed)}: "
                     f"<span class=\"muted\">{esc(text)}</span></li>")
    summary = result.provenance.get("summary")
    agreement = (result.provenance.get("agreement") or {}).get("agrees")
    head = ""
    if summary:
        said = summary[len(SUMMARY_PREFIX):] if summary.startswith(SUMMARY_PREFIX) else summary
        verdict = "" if agreement is None else (" (agrees with the forensic answer)" if agreement
                                                else " (differs from the forensic answer)")
        head = f"<p>The file says: {esc(said)}{esc(verdict)}</p>"
    if not items:
        return head or '<p class="muted">The file says nothing about its origin.</p>'
    return f"{head}<ul>{''.join(items)}</ul>"


def candidate_row(candidate: Candidate, exemplars: dict[str, tuple[bytes, str]]) -> str:
    """One candidate as a table row: its name, the bar of its score against its threshold, the figures,
    and its nearest enrolled samples as small thumbnails captioned with their similarity (each sample's
    path and sha256 its tooltip)."""
    c = candidate
    low, high = min(0.0, c.score, c.threshold), max(1.0, c.score, c.threshold)
    family = f" ({c.family})" if c.family else ""
    figures = "".join(small_exemplar_figure(e, exemplars) for e in c.exemplars)
    return (f"<tr><td><b>{esc(c.generator)}{esc(family)}</b></td><td>{score_bar(c.score, c.threshold, low, high)}</td>"
            f'<td class="figures">score {c.score:.3f}, threshold {c.threshold:.3f}<br>margin {c.margin:+.3f}, '
            f"confidence {c.confidence:.2f}</td>"
            f'<td><div class="exemplars">{figures}</div></td></tr>')


def small_exemplar_figure(exemplar: dict[str, Any], images: dict[str, tuple[bytes, str]]) -> str:
    """A nearest enrolled sample in a candidate row: its thumbnail captioned with its similarity, its path and
    sha256 the tooltip."""
    sha, path = exemplar.get("sha256") or "", exemplar.get("path") or ""
    shown = images.get(sha)
    picture = image_tag(*shown, alt=path, css="thumb") if shown else placeholder(path or sha[:12])
    return (f'<figure title="{esc(path)} sha256 {esc(sha)}">{picture}'
            f'<figcaption>{float(exemplar.get("similarity", 0)):.3f}</figcaption></figure>')


def query_section(result: IdentificationResult, preview: tuple[bytes, str] | None,
                  exemplars: dict[str, tuple[bytes, str]], anchor: str = "") -> str:
    """One query's ``<section>`` (``id`` ``anchor`` when given), compact: a small preview beside the
    decision, one row per candidate, the file's own evidence and the flags."""
    picture = image_tag(*preview, alt=result.path, css="preview") if preview else placeholder(result.path)
    parts = [f"<h2>{path_html(result.path)}</h2>"]
    if result.error is not None:
        parts.append(f'<p class="error">error: {esc(result.error)}</p>')
    else:
        confidence = "" if result.confidence is None else f" — confidence {result.confidence:.2f}"
        parts.append(f'<p><span class="decision {decision_class(result)}">{esc(result.decision)}</span>'
                     f"{esc(confidence)}: {esc(result.reason)}</p>")
        facts = [f"extractor {result.extractor}"] if result.extractor else []
        facts += [delivery_words(result.delivery)] if result.delivery else []
        facts += [f"sha256 {result.sha256}"] if result.sha256 else []
        if facts:
            parts.append(f'<p class="muted">{esc("; ".join(facts))}</p>')
        if result.candidates:
            parts.append('<table class="candidates">'
                         + "".join(candidate_row(c, exemplars) for c in result.candidates) + "</table>")
        if result.flags:
            parts.append("<p>" + "".join(f'<span class="flag">{esc(f)}</span>' for f in result.flags) + "</p>")
    parts.append(evidence_html(result))
    ident = f' id="{esc(anchor)}"' if anchor else ""
    return (f'<section class="query"{ident}><div class="preview">{picture}</div>'
            f'<div class="body">{"".join(parts)}</div></section>')


def summary_table(results: list[IdentificationResult]) -> str:
    """One row per query, in input order: its file (a link to its section; relative to the folder all the
    queries share, named above the table), decision, confidence, nearest candidate and delivery."""
    paths = [r.path for r in results]
    try:
        common = os.path.commonpath(paths) if paths else ""
    except ValueError:  # absolute and relative paths mixed
        common = ""
    if common in paths:  # a single file, or one file given every time
        common = os.path.dirname(common)
    rows = []
    for i, r in enumerate(results, 1):
        shown = os.path.relpath(r.path, common) if common else r.path
        row = f'<tr><td class="num">{i}</td><td class="file"><a href="#q{i}">{path_html(shown)}</a></td>'
        if r.error is not None:
            rows.append(row + f'<td><span class="error">error</span></td><td colspan="3">{esc(r.error)}</td></tr>')
            continue
        nearest = r.nearest
        rows.append(row + f'<td><span class="decision {decision_class(r)}">{esc(r.decision)}</span></td>'
                    f'<td class="num">{"" if r.confidence is None else f"{r.confidence:.2f}"}</td>'
                    + ("<td></td>" if nearest is None else
                       f"<td>{esc(nearest.generator)} {nearest.score:.3f} / {nearest.threshold:.3f}</td>")
                    + f"<td>{esc(delivery_cell(r.delivery))}</td></tr>")
    where = f'<p class="muted">Files in {path_html(common)}</p>' if common else ""
    return (f'{where}<table class="summary"><thead><tr><th>#</th><th>file</th><th>decision</th><th>confidence</th>'
            "<th>nearest: score / threshold</th><th>delivery</th></tr></thead><tbody>"
            + "".join(rows) + "</tbody></table>")


def delivery_cell(delivery: dict[str, Any] | None) -> str:
    """``JPEG q≈80 -> jpeg:80 version``: what the file is and the gallery version it was scored against."""
    if not delivery:
        return ""
    version = delivery.get("version")
    return f"{delivery.get('describe')} -> " + ("originals" if version in (None, "original") else f"{version} version")


class IdentifyReport:
    """Collects identification results (:meth:`add`, e.g. as a batch streams them) and writes them as
    one self-contained page (:meth:`write`)."""

    def __init__(self) -> None:
        self.results: list[IdentificationResult] = []

    def add(self, result: IdentificationResult) -> None:
        self.results.append(result)

    def collect(self, results: Iterable[IdentificationResult]) -> Iterator[IdentificationResult]:
        """``results`` unchanged, each also added to the report as it passes."""
        for result in results:
            self.add(result)
            yield result

    def render(self, gallery: Gallery | None = None, title: str = "attrib identify report") -> str:
        wanted = {e["sha256"]: e.get("path") for r in self.results for c in r.candidates for e in c.exemplars
                  if e.get("sha256")}
        images = exemplar_images(gallery, wanted)
        counts: dict[str, int] = {}
        for r in self.results:
            key = "error" if r.error is not None else str(r.decision)
            counts[key] = counts.get(key, 0) + 1
        summary = ", ".join(f"{esc(k)} {n}" for k, n in sorted(counts.items()))
        when = _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
        sections = [query_section(r, preview_of(r.path), images, f"q{i}") for i, r in enumerate(self.results, 1)]
        body = (f"<h1>{esc(title)}</h1><p class=\"muted\">{len(self.results)} images ({summary}); {when}. "
                "Bars: the score (green at or above the threshold, red below) and the threshold (black tick). "
                "Thumbnails: each candidate's nearest enrolled samples with their similarity.</p>"
                + summary_table(self.results) + "\n".join(sections))
        return page(title, body)

    def write(self, path: Path, gallery: Gallery | None = None) -> Path:
        return write_page(Path(path), self.render(gallery))


def preview_of(path: str) -> tuple[bytes, str] | None:
    p = Path(path)
    return preview_bytes(p, PREVIEW_PX) if p.is_file() else None
