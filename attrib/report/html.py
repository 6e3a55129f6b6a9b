"""Building blocks of the HTML reports: escaping, the page skeleton and its style sheet, inline
images (``data:`` URIs of downscaled previews), the score-against-threshold bar, atomic writing.

Every text that comes from a file, its metadata or the gallery goes through :func:`esc`.
"""

from __future__ import annotations

import base64
import io
import os
import tempfile
from html import escape
from pathlib import Path
from typing import AbstractSet, Any

from ..errors import AttribError

PREVIEW_PX = 256  # longest side of a query's inline preview
THUMB_PX = 128  # longest side of an exemplar thumbnail made from its file

STYLE = """
body { font-family: system-ui, sans-serif; margin: 1.5em; color: #222; background: #fff; }
h1 { font-size: 1.5em; } h2 { font-size: 1.2em; margin: 0 0 .4em 0; overflow-wrap: break-word; }
h4 { margin: 0 0 .3em 0; }
section.query { border: 1px solid #ccc; border-radius: 6px; padding: .6em .8em; margin: .6em 0; display: flex;
                gap: 1em; }
section.query h2 { font-size: 1em; }
section.query p { margin: .15em 0; }
section.query > .preview { flex: 0 0 auto; }
section.query > .body { flex: 1 1 auto; min-width: 0; }
.decision { font-size: 1.2em; font-weight: bold; }
.decision.known { color: #1a6b1a; } .decision.unknown { color: #8a1c1c; } .decision.ambiguous { color: #8a6d00; }
table.candidates { margin: .3em 0; }
table.candidates td { border: none; padding: .1em .5em .1em 0; vertical-align: middle; }
table.candidates .exemplars { gap: .3em; flex-wrap: nowrap; }
table.candidates figure { max-width: 52px; font-size: .7em; line-height: 1.1; }
table.candidates td.figures { color: #666; font-size: .8em; white-space: nowrap; }
table.candidates img.thumb, table.candidates .placeholder { width: 48px; height: 48px; font-size: .55em; }
.exemplars { display: flex; gap: .6em; flex-wrap: wrap; }
figure { margin: 0; text-align: center; font-size: .8em; max-width: 140px; }
.name { display: block; max-width: 100%; white-space: nowrap; overflow: hidden; text-overflow: ellipsis; }
img.thumb { width: 128px; height: 128px; object-fit: contain; background: #eee; border: 1px solid #ccc; }
img.preview { max-width: 160px; max-height: 160px; border: 1px solid #ccc; }
.placeholder { width: 128px; height: 128px; background: #eee; border: 1px dashed #999; display: flex;
               align-items: center; justify-content: center; font-size: .75em; color: #555; overflow: hidden; }
.placeholder > span { max-width: 100%; overflow-wrap: break-word; text-align: center; }
.flag { display: inline-block; background: #fde2c2; border-radius: 3px; padding: .1em .4em; margin: .1em; }
.error { color: #8a1c1c; font-weight: bold; }
table { border-collapse: collapse; margin: .5em 0; } td, th { border: 1px solid #ccc; padding: .2em .5em; }
th { background: #f3f3f3; } td.num { text-align: right; font-variant-numeric: tabular-nums; }
table.summary td.file { max-width: 32em; overflow-wrap: break-word; }
.grid { display: flex; flex-wrap: wrap; gap: .8em; }
.muted { color: #666; font-size: .85em; }
.held-out { font-size: .85em; } .held-out.below { color: #8a1c1c; font-weight: bold; }
.mistake { border: 1px solid #ccc; border-radius: 6px; padding: .6em .8em; margin: .8em 0; }
.mistake figure.query img.thumb { border: 2px solid #8a1c1c; }
"""


def esc(value: object) -> str:
    """``value`` as text, HTML-escaped (quotes included); None is empty."""
    return "" if value is None else escape(str(value), quote=True)


def path_html(path: object) -> str:
    """``path`` escaped, with a line-break opportunity after each path separator, so that a long path
    wraps between its folders rather than inside a name."""
    return esc(path).replace("/", "/<wbr>").replace("\\", "\\<wbr>")


def name_html(path: object) -> str:
    """The file name of ``path`` on one line, cut with an ellipsis where its box is narrower; the whole
    path is its tooltip."""
    text = "" if path is None else str(path)
    name = text.replace("\\", "/").rsplit("/", 1)[-1] or text
    return f'<span class="name" title="{esc(text)}">{esc(name)}</span>'


def page(title: str, body: str) -> str:
    """A whole HTML document: ``title`` is escaped here, ``body`` is HTML built with :func:`esc`."""
    return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; img-src data:; "
            "style-src 'unsafe-inline'\">"
            f"<title>{esc(title)}</title><style>{STYLE}</style></head>\n<body>\n{body}\n</body></html>\n")


def data_uri(data: bytes, mime: str) -> str:
    return f"data:{mime};base64,{base64.b64encode(data).decode('ascii')}"


def preview_bytes(source: Path | bytes, max_px: int) -> tuple[bytes, str] | None:
    """A WebP (PNG where Pillow has no WebP) of the image in ``source`` (a path or its bytes), its longest
    side at most ``max_px``: ``(data, mime)``, or None when it cannot be read as an image."""
    from PIL import Image, UnidentifiedImageError, features

    try:
        with Image.open(io.BytesIO(source) if isinstance(source, bytes) else source) as im:
            im.draft("RGB", (max_px, max_px))
            im = im.convert("RGBA" if "A" in im.getbands() else "RGB")
            im.thumbnail((max_px, max_px))
            out = io.BytesIO()
            if features.check("webp"):
                im.save(out, "WEBP", quality=80)
                return out.getvalue(), "image/webp"
            im.save(out, "PNG", optimize=True)
            return out.getvalue(), "image/png"
    except (OSError, UnidentifiedImageError, ValueError, Image.DecompressionBombError):
        return None


def image_tag(data: bytes, mime: str, alt: str, css: str) -> str:
    return f'<img class="{css}" alt="{esc(alt)}" src="{data_uri(data, mime)}">'


def placeholder(text: str) -> str:
    """A grey box in place of a picture, naming ``text`` (a path wraps between its folders)."""
    return f'<div class="placeholder" title="{esc(text)}"><span>{path_html(text)}</span></div>'


def score_bar(score: float, threshold: float, low: float = -1.0, high: float = 1.0) -> str:
    """An inline SVG bar: the score filled from ``low``, the threshold a black tick; green when the score
    reaches the threshold, red otherwise. Values outside ``[low, high]`` are drawn at the ends."""
    width, height = 240, 14

    def x(value: float) -> float:
        span = (high - low) or 1.0
        return round(max(0.0, min(1.0, (value - low) / span)) * width, 1)

    colour = "#2e8b2e" if score >= threshold else "#c0392b"
    label = f"score {score:.3f} against threshold {threshold:.3f}"
    return (f'<svg class="bar" width="{width}" height="{height + 4}" role="img" aria-label="{esc(label)}">'
            f"<title>{esc(label)}</title>"
            f'<rect x="0" y="2" width="{width}" height="{height}" fill="#eee"/>'
            f'<rect x="0" y="2" width="{x(score)}" height="{height}" fill="{colour}"/>'
            f'<rect x="{max(0.0, x(threshold) - 1)}" y="0" width="2" height="{height + 4}" fill="#000"/></svg>')


def table(header: list[str], rows: list[list[Any]], numeric: AbstractSet[int] = frozenset()) -> str:
    """A table of escaped cells; columns in ``numeric`` right-aligned."""
    head = "".join(f"<th>{esc(h)}</th>" for h in header)
    num = ' class="num"'
    body = "".join(
        "<tr>" + "".join(f"<td{num if i in numeric else ''}>{esc(cell)}</td>" for i, cell in enumerate(row))
        + "</tr>" for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def write_page(path: Path, text: str) -> Path:
    """Write ``text`` to ``path`` atomically (a temporary file beside it, then renamed)."""
    path = Path(path)
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    except OSError as exc:
        raise AttribError(f"cannot write report {path}: {exc.strerror or exc}") from None
    try:
        umask = os.umask(0)
        os.umask(umask)
        os.fchmod(fd, 0o666 & ~umask)  # as an ordinary new file, not mkstemp's owner-only mode
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            out.write(text)
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, path)
    except OSError as exc:
        Path(tmp).unlink(missing_ok=True)
        raise AttribError(f"cannot write report {path}: {exc.strerror or exc}") from None
    return path
