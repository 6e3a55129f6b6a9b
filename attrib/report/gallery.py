"""``attrib gallery show NAME --report FILE.html``: one generator's enrolled samples as a grid of
thumbnails (the gallery's stored thumbnails where it has them, else the sample files, else a
placeholder naming the path), each with its held-out score against the generator's threshold, so the
samples that do not belong stand out."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from .html import esc, image_tag, name_html, page, placeholder, table, write_page
from .identify import exemplar_images

if TYPE_CHECKING:
    from ..gallery import Gallery


def sample_figure(sample: dict[str, Any], images: dict[str, tuple[bytes, str]], score: float | None = None,
                  threshold: float | None = None) -> str:
    path, sha = sample.get("path") or "", sample["sha256"]
    shown = images.get(sha)
    picture = image_tag(*shown, alt=path, css="thumb") if shown else placeholder(path or sha[:12])
    size = f"{sample.get('width')}x{sample.get('height')} {sample.get('format') or ''}"
    held_out = ""
    if score is not None:
        below = threshold is not None and score < threshold
        held_out = (f'<br><span class="{"held-out below" if below else "held-out"}">held-out {score:.3f}'
                    + (" below threshold" if below else "") + "</span>")
    return (f'<figure title="{esc(path)} sha256 {esc(sha)}">{picture}<figcaption>{name_html(path or sha[:12])}'
            f'<span class="muted">{esc(size)}</span>{held_out}</figcaption></figure>')


GENUINE_ACCEPTED = "genuine accepted at calibration"


def held_out_words(held_out: dict[str, float], threshold: float, extractor: str | None,
                   calibration: list[dict[str, Any]]) -> str:
    """What the per-sample held-out scores are, how many fall below the threshold, and why that count is
    not the share of new images turned away, which the calibration's figure estimates."""
    below = sum(score < threshold for score in held_out.values())
    tar = next((c.get("tar") for c in calibration if c["extractor"] == extractor), None)
    estimate = ("" if tar is None else
                f" The estimate for new images is the table's {GENUINE_ACCEPTED} of {esc(extractor)}: {tar:.0%} "
                f"accepted, {1 - tar:.0%} below the threshold.")
    return (f"<p>Held-out score: each sample against the rest of its generator under {esc(extractor)} (as identify "
            f"scores a query), threshold {threshold:.4f}: {below} of {len(held_out)} below it, which may not belong "
            "here. These scores rank the samples against each other; they run higher than a new image's would, "
            "because the gallery's whitening was fitted with every sample in it, so fewer fall below the threshold "
            f"than new images of this generator would.{estimate}</p>")


def generator_page(detail: dict[str, Any], images: dict[str, tuple[bytes, str]],
                   held_out: dict[str, float] | None = None, threshold: float | None = None,
                   extractor: str | None = None) -> str:
    """The page for :meth:`attrib.gallery.Gallery.generator_detail` ``detail``, with each sample's held-out
    score (:meth:`attrib.gallery.Gallery.held_out_scores`) where known."""
    held_out = held_out or {}
    thresholds = table(["extractor", "threshold", "method", "target FAR", GENUINE_ACCEPTED],
                       [[c["extractor"], f"{c['threshold']:.4f}", c["method"], f"{c['target_far']:g}",
                         "-" if c.get("tar") is None else f"{c['tar']:.0%}"] for c in detail["calibration"]],
                       numeric={1, 3, 4})
    explained = ("<p class=\"muted\">" + esc(GENUINE_ACCEPTED) + ": the share of this generator's samples whose "
                 "score against the rest of it reached its threshold when the gallery was last calibrated. A full "
                 "calibration scores each sample under a whitening fitted without it, as a new image is scored, so "
                 "this is the estimate of the share of new images of this generator that are accepted. A row per "
                 "delivery version (extractor|jpeg:80 ...) is measured on the samples after that coding.</p>"
                 if detail["calibration"] else "")
    shown = sum(s["sha256"] in images for s in detail["samples"])
    scored = (held_out_words(held_out, threshold, extractor, detail["calibration"])
              if held_out and threshold is not None else "")
    figures = "".join(sample_figure(s, images, held_out.get(s["sha256"]), threshold) for s in detail["samples"])
    body = (f"<h1>{esc(detail['name'])}</h1><p>family: {esc(detail['family'] or '-')}; enrolled "
            f"{esc(detail['created_at'])}" + (f"; note: {esc(detail['note'])}" if detail.get("note") else "")
            + f"</p>{thresholds}{explained}<h2>{len(detail['samples'])} samples ({shown} with a picture)</h2>{scored}"
            f"<div class=\"grid\">{figures}</div>")
    return page(f"attrib gallery: {detail['name']}", body)


def write_generator_report(gallery: Gallery, name: str, path: Path) -> Path:
    """Write the page of generator ``name`` of ``gallery`` to ``path``."""
    detail = gallery.generator_detail(name)
    images = exemplar_images(gallery, {s["sha256"]: s.get("path") for s in detail["samples"]})
    return write_page(Path(path), generator_page(detail, images, *gallery.held_out_scores(name)))
