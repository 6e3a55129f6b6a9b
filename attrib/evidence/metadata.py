"""Text a file carries beside its pixels, read through Pillow without decoding: EXIF fields
(decoded to str) and the XMP packet. Every value is capped at ``MAX_TEXT_CHARS``.

The Exif sub-IFD's UserComment and MakerNote are also read from IFD0, where some writers put them
(DALL·E 2's PNGs: ``Made with OpenAI DALL-E``, ``OpenAI--<hex>``), and a PNG's ``eXIf`` chunk after
its pixel data is found from the chunk headers (Pillow reads one there only by decoding)."""

from __future__ import annotations

import functools
from typing import Callable, ParamSpec, TypeVar

from PIL import Image

from ..errors import EvidenceError, MetadataError
from .containers import png_chunk

MAX_TEXT_CHARS = 4_000_000  # longer values are cut here (parsers stop at a lower limit)
MAX_XMP_BYTES = 2_000_000

# EXIF tags that carry claims: base IFD, then the Exif sub-IFD
BASE_TAGS = {0x0131: "Software", 0x013B: "Artist", 0x010E: "ImageDescription", 0x010F: "Make",
             0x0110: "Model", 0x8298: "Copyright", 0x9C9C: "XPComment"}
EXIF_IFD = 0x8769
EXIF_TAGS = {0x9286: "UserComment", 0x927C: "MakerNote"}
_USER_COMMENT_CODES = {b"ASCII\x00\x00\x00": "ascii", b"JIS\x00\x00\x00\x00\x00": "shift_jis",
                       b"UNICODE\x00": "utf-16", b"\x00" * 8: "utf-8"}


def _printable(text: str) -> bool:
    """Whether ``text`` reads as text (judged on its start: binary MakerNotes do not)."""
    head = text[:2000]
    return bool(head) and sum(c.isprintable() or c in "\n\r\t" for c in head) >= 0.9 * len(head)


def _utf16(raw: bytes) -> str:
    """UTF-16 of unknown byte order (EXIF writers disagree): the reading with more ASCII wins."""
    readings = [raw.decode(codec, "replace") for codec in ("utf-16-be", "utf-16-le")]
    return max(readings, key=lambda s: sum(" " <= c <= "~" for c in s))


def decode_user_comment(raw: bytes) -> str:
    """EXIF UserComment: an 8-byte character code, then the text."""
    codec = _USER_COMMENT_CODES.get(raw[:8])
    if codec is None:
        return raw.decode("utf-8", "replace")
    body = raw[8:]
    return _utf16(body) if codec == "utf-16" else body.decode(codec, "replace")


def _without_code(text: str) -> str:
    """A UserComment Pillow gave as text (written with the ASCII type): its character code dropped."""
    code = text[:8].encode("latin-1", "replace")
    return text[8:] if code in _USER_COMMENT_CODES else text


def _as_text(name: str, value: object) -> str | None:
    if isinstance(value, str):
        text = _without_code(value) if name == "UserComment" else value
    elif isinstance(value, bytes):
        raw = value[: 2 * MAX_TEXT_CHARS]
        if name == "UserComment":
            text = decode_user_comment(raw)
        elif name == "XPComment":
            text = raw.decode("utf-16-le", "replace")
        else:
            text = raw.decode("utf-8", "replace")
    elif isinstance(value, tuple) and name == "XPComment":  # Pillow may give XP* tags as byte tuples
        text = bytes(v & 0xFF for v in value[: 2 * MAX_TEXT_CHARS]).decode("utf-16-le", "replace")
    else:
        return None
    text = text.replace("\x00", " ").strip()[:MAX_TEXT_CHARS]
    return text if _printable(text) else None


Params = ParamSpec("Params")
Read = TypeVar("Read")


def _metadata_errors(read: Callable[Params, Read]) -> Callable[Params, Read]:
    """Pillow's failures on a damaged file (OSError, ValueError, struct.error, ...) -> MetadataError."""

    @functools.wraps(read)
    def wrapped(*args: Params.args, **kwargs: Params.kwargs) -> Read:
        try:
            return read(*args, **kwargs)
        except EvidenceError:
            raise
        except Exception as exc:  # noqa: BLE001 - any parser failure on a hostile file is one line
            raise MetadataError(f"metadata cannot be read: {str(exc) or type(exc).__name__}") from None

    return wrapped


def _png_exif(image: Image.Image, data: bytes | None) -> Image.Exif | None:
    """A PNG's EXIF: Pillow's from an eXIf chunk before the pixel data, else one found after it in
    ``data`` (Pillow would decode the whole image to look there)."""
    if "exif" in image.info:
        return image.getexif()
    payload = png_chunk(data, b"eXIf") if data else None
    if not payload:
        return None
    exif = Image.Exif()
    exif.load(payload if payload.startswith(b"Exif\x00\x00") else b"Exif\x00\x00" + payload)
    return exif


@_metadata_errors
def exif_text(image: Image.Image, data: bytes | None = None) -> dict[str, str]:
    """The claim-bearing EXIF fields that hold text: name -> str (binary MakerNotes left out).
    ``data`` are the file's bytes, where a PNG's eXIf chunk after the pixel data is looked for."""
    exif = _png_exif(image, data) if image.format == "PNG" else image.getexif()
    if not exif:
        return {}
    found = {name: exif.get(tag) for tag, name in {**BASE_TAGS, **EXIF_TAGS}.items() if tag in exif}
    if EXIF_IFD in exif:
        sub = exif.get_ifd(EXIF_IFD)
        found.update({name: sub.get(tag) for tag, name in EXIF_TAGS.items() if tag in sub})
    texts = {name: _as_text(name, value) for name, value in found.items()}
    return {name: text for name, text in texts.items() if text}


@_metadata_errors
def info_text(image: Image.Image) -> dict[str, str]:
    """The image's text entries (PNG tEXt/zTXt/iTXt, GIF comments, ...): key -> str."""
    return {str(k): v for k, v in image.info.items() if isinstance(v, str)}


@_metadata_errors
def xmp_packet(image: Image.Image) -> bytes | None:
    """The raw XMP packet (JPEG APP1, PNG iTXt, WebP and GIF chunks, TIFF tag 700), or None."""
    value = image.info.get("xmp") or image.info.get("XML:com.adobe.xmp")
    if value is None:
        tags = getattr(image, "tag_v2", None)
        value = tags.get(700) if tags is not None else None
    if isinstance(value, str):
        value = value.encode("utf-8", "replace")
    return bytes(value) if value else None
