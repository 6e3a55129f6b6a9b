"""Whether a file embeds a C2PA manifest store, found from its bytes alone (no decoding, no c2pa
import): a PNG ``caBX`` chunk, a JPEG APP11 JUMBF segment, a RIFF/WebP ``C2PA`` chunk, or for
other containers (TIFF, GIF, HEIF/AVIF) a JUMBF box labelled ``c2pa``; and a PNG's chunks, read
from their headers (:func:`png_chunk`)."""

from __future__ import annotations

import struct
from typing import Iterator

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
MAX_STEPS = 100_000  # chunks or segments walked before giving up (a file of tiny chunks)


def png_chunks(data: bytes) -> Iterator[tuple[bytes, int, int]]:
    """(type, offset of the data, length) of each chunk of the PNG file ``data`` up to IEND, read
    from the chunk headers alone (no CRC check, no decompression)."""
    pos, steps = len(PNG_SIGNATURE), 0
    while pos + 8 <= len(data) and steps < MAX_STEPS:
        length, kind = struct.unpack_from(">I4s", data, pos)
        if kind == b"IEND":
            return
        yield kind, pos + 8, length
        pos += 12 + length
        steps += 1


def png_chunk(data: bytes, kind: bytes) -> bytes | None:
    """The data of the first chunk of type ``kind`` in the PNG file ``data``, or None."""
    found = next(((at, length) for chunk, at, length in png_chunks(data) if chunk == kind), None)
    return None if found is None else data[found[0]:found[0] + found[1]]


def _png_has_store(data: bytes) -> bool:
    return any(kind == b"caBX" for kind, _, _ in png_chunks(data))


def _jpeg_has_store(data: bytes) -> bool:
    pos, steps = 2, 0
    while pos + 4 <= len(data) and steps < MAX_STEPS:
        if data[pos] != 0xFF:
            return False
        marker = data[pos + 1]
        if marker == 0xFF:  # fill byte
            pos += 1
            continue
        if marker in (0xD8, 0x01) or 0xD0 <= marker <= 0xD7:  # markers without a length
            pos += 2
            continue
        if marker in (0xDA, 0xD9):  # start of scan / end of image: metadata comes before
            return False
        (length,) = struct.unpack_from(">H", data, pos + 2)
        if marker == 0xEB:  # APP11: JPEG XT boxes, where C2PA puts its JUMBF
            segment = data[pos + 4:pos + 2 + length]
            if segment[:2] == b"JP" and b"jumb" in segment and b"c2pa" in segment:
                return True
        pos += 2 + length
        steps += 1
    return False


def _riff_has_store(data: bytes) -> bool:
    pos, steps = 12, 0
    while pos + 8 <= len(data) and steps < MAX_STEPS:
        kind, length = struct.unpack_from("<4sI", data, pos)
        if kind == b"C2PA":
            return True
        pos += 8 + length + (length & 1)
        steps += 1
    return False


def manifest_store_format(data: bytes) -> str | None:
    """The MIME type to read ``data`` as, when it embeds a C2PA manifest store; else None."""
    if data.startswith(PNG_SIGNATURE):
        return "image/png" if _png_has_store(data) else None
    if data.startswith(b"\xff\xd8"):
        return "image/jpeg" if _jpeg_has_store(data) else None
    if data.startswith(b"RIFF") and data[8:12] == b"WEBP":
        return "image/webp" if _riff_has_store(data) else None
    jumbf = data.find(b"jumb")
    if jumbf < 0 or data.find(b"c2pa", jumbf) < 0:
        return None
    if data[:4] in (b"II*\x00", b"MM\x00*"):
        return "image/tiff"
    if data[:6] in (b"GIF87a", b"GIF89a"):
        return "image/gif"
    if data[4:8] == b"ftyp":
        brand = data[8:12]
        return "image/avif" if brand in (b"avif", b"avis") else "image/heif"
    return None
