"""The identify report: per query its preview, decision and confidence, the score against the
threshold, the top candidates with their nearest enrolled exemplars as thumbnails, what the file
says about its origin, and the flags.

:class:`IdentifyReport` collects results as a command streams them; :meth:`IdentifyReport.write`
fetches the exemplars' thumbnails from the gallery (``Gallery.thumbnails`` where the gallery has
it, else the exemplar's stored path, else a placeholder naming the path) and writes the page.
"""

from __future__ import annotations

import datetime as _dt
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterable, Iterator

from .html import (PREVIEW_PX, THUMB_PX, esc, image_tag, page, placeholder, preview_bytes, score_bar,
                   write_page)

if TYPE_CHECKING:
    from ..gallery import Gallery
    from ..scoring.decision import IdentificationResult


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
    sha, path = exemplar.get("sha256") or "", exemplar.get("path") or ""
    shown = images.get(sha)
    picture = image_tag(*shown, alt=path, css="thumb") if shown else placeholder(path or sha[:12])
    return (f'<figure>{picture}<figcaption>{float(exemplar.get("similarity", 0)):.3f}<br>'
            f'<span class="muted" title="{esc(path)} sha256 {esc(sha)}">{esc(Path(path).name)}</span>'
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
        verdict = "" if agreement is None else (" (agrees with the forensic answer)" if agreement
                                                else " (differs from the forensic answer)")
        head = f"<p>The file says: {esc(summary)}{esc(verdict)}</p>"
    if not items:
        return head or '<p class="muted">The file says nothing about its origin.</p>'
    return f"{head}<ul>{''.join(items)}</ul>"


def query_section(result: IdentificationResult, preview: tuple[bytes, str] | None,
                  exemplars: dict[str, tuple[bytes, str]]) -> str:
    """One query's ``<section>``."""
    picture = image_tag(*preview, alt=result.path, css="preview") if preview else placeholder(result.path)
    parts = [f"<h2>{esc(result.path)}</h2>"]
    if result.error is not None:
        parts.append(f'<p class="error">error: {esc(result.error)}</p>')
    else:
        confidence = "" if result.confidence is None else f" — confidence {result.confidence:.2f}"
        parts.append(f'<p><span class="decision {decision_class(result)}">{esc(result.decision)}</span>'
                     f"{esc(confidence)}</p><p>{esc(result.reason)}</p>")
        if result.sha256:
            parts.append(f'<p class="muted">sha256 {esc(result.sha256)}; extractor {esc(result.extractor)}</p>')
        if result.delivery:
            parts.append(f'<p class="muted">{esc(delivery_words(result.delivery))}</p>')
        for c in result.candidates:
            low, high = min(0.0, c.score, c.threshold), max(1.0, c.score, c.threshold)
            family = f" ({c.family})" if c.family else ""
            figures = "".join(exemplar_figure(e, exemplars) for e in c.exemplars)
            parts.append(
                f'<div class="candidate"><b>{esc(c.generator)}{esc(family)}</b>: score {c.score:.3f}, '
                f"threshold {c.threshold:.3f}, margin {c.margin:+.3f}, confidence {c.confidence:.2f}<br>"
                f"{score_bar(c.score, c.threshold, low, high)}"
                + (f'<div class="exemplars">{figures}</div>' if figures else "") + "</div>")
        if result.flags:
            parts.append("<p>" + "".join(f'<span class="flag">{esc(f)}</span>' for f in result.flags) + "</p>")
    parts.append(evidence_html(result))
    return (f'<section class="query"><div class="preview">{picture}</div>'
            f'<div class="body">{"".join(parts)}</div></section>')


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
        sections = [query_section(r, preview_of(r.path), images) for r in self.results]
        body = (f"<h1>{esc(title)}</h1><p class=\"muted\">{len(self.results)} images ({summary}); {when}. "
                "Bars: the score (green at or above the threshold, red below) and the threshold (black tick). "
                "Thumbnails: each candidate's nearest enrolled samples with their similarity.</p>"
                + "\n".join(sections))
        return page(title, body)

    def write(self, path: Path, gallery: Gallery | None = None) -> Path:
        return write_page(Path(path), self.render(gallery))


def preview_of(path: str) -> tuple[bytes, str] | None:
    p = Path(path)
    return preview_bytes(p, PREVIEW_PX) if p.is_file() else None
