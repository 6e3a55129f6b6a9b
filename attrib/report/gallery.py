"""``attrib gallery show NAME --report FILE.html``: one generator's enrolled samples as a grid of
thumbnails (the gallery's stored thumbnails where it has them, else the sample files, else a
placeholder naming the path), with its thresholds."""

from __future__ import annotations

from pathlib import Path

from .html import esc, image_tag, page, placeholder, table, write_page
from .identify import exemplar_images


def sample_figure(sample: dict, images: dict[str, tuple[bytes, str]]) -> str:
    path, sha = sample.get("path") or "", sample["sha256"]
    shown = images.get(sha)
    picture = image_tag(*shown, alt=path, css="thumb") if shown else placeholder(path or sha[:12])
    size = f"{sample.get('width')}x{sample.get('height')} {sample.get('format') or ''}"
    return (f'<figure>{picture}<figcaption><span title="{esc(path)} sha256 {esc(sha)}">{esc(Path(path).name)}'
            f'</span><br><span class="muted">{esc(size)}</span></figcaption></figure>')


def generator_page(detail: dict, images: dict[str, tuple[bytes, str]]) -> str:
    """The page for :meth:`attrib.gallery.Gallery.generator_detail` ``detail``."""
    thresholds = table(["extractor", "threshold", "method", "target FAR", "genuine accepted"],
                       [[c["extractor"], f"{c['threshold']:.4f}", c["method"], f"{c['target_far']:g}",
                         "-" if c.get("tar") is None else f"{c['tar']:.0%}"] for c in detail["calibration"]],
                       numeric={1, 3, 4})
    shown = sum(s["sha256"] in images for s in detail["samples"])
    body = (f"<h1>{esc(detail['name'])}</h1><p>family: {esc(detail['family'] or '-')}; enrolled "
            f"{esc(detail['created_at'])}" + (f"; note: {esc(detail['note'])}" if detail.get("note") else "")
            + f"</p>{thresholds}<h2>{len(detail['samples'])} samples ({shown} with a picture)</h2>"
            f"<div class=\"grid\">{''.join(sample_figure(s, images) for s in detail['samples'])}</div>")
    return page(f"attrib gallery: {detail['name']}", body)


def write_generator_report(gallery, name: str, path: Path) -> Path:
    """Write the page of generator ``name`` of ``gallery`` to ``path``."""
    detail = gallery.generator_detail(name)
    images = exemplar_images(gallery, {s["sha256"]: s.get("path") for s in detail["samples"]})
    return write_page(Path(path), generator_page(detail, images))
