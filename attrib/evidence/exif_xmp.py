"""EXIF and XMP claims: Software, Artist, ImageDescription, UserComment, MakerNote, camera
Make/Model; XMP CreatorTool, Credit, description and the IPTC DigitalSourceType. Pillow reads
both without decoding; the XMP packet is parsed with defusedxml (no DTDs, no entities)."""

from __future__ import annotations

import itertools
from typing import Any

from ..errors import EvidenceError
from .item import Evidence
from .metadata import MAX_XMP_BYTES, exif_text, xmp_packet
from .names import MAX_MATCH_CHARS, GeneratorNames
from .parameters import is_generation_parameters
from .source import EvidenceSource

# fields in the order their claims are preferred
EXIF_CLAIM_FIELDS = ("Software", "UserComment", "ImageDescription", "XPComment", "Artist", "MakerNote",
                     "Copyright", "Make", "Model")
XMP_CLAIM_FIELDS = ("DigitalSourceType", "softwareAgent", "CreatorTool", "Credit", "description", "Software")
MAX_XMP_ELEMENTS = 20_000


def _claim(kind: str, fields: dict[str, str], names: GeneratorNames) -> Evidence:
    """One item for a file's fields; every field goes into ``detail``.

    The generator is the first field (in preference order) that names one. Whether the image is
    AI-generated is what an IPTC DigitalSourceType term says when it says so, else True when a
    field names a generator or says "AI-generated", else None. A field is matched on its first
    ``MAX_MATCH_CHARS`` characters; longer ones are listed in ``detail["long_fields"]``.
    """
    ordered = [f for f in (*EXIF_CLAIM_FIELDS, *XMP_CLAIM_FIELDS) if f in fields]
    source_type = names.source_type(fields.get("DigitalSourceType"))
    stated = source_type[1] if source_type is not None else None
    named = next(((f, rule) for f in ordered if (rule := names.match(fields[f], kind)) is not None), None)
    said_ai = next((f for f in ordered if names.says_ai(fields[f])), None)
    rule = named[1] if named else None
    ai = stated if stated is not None else (True if named or said_ai else None)
    if named:
        field = named[0]
    elif source_type is not None:
        field = "DigitalSourceType"
    else:
        field = said_ai or ordered[0]
    detail: dict[str, Any] = {"field": field, "fields": fields}
    if source_type is not None:
        detail["digital_source_type"] = source_type[0]
    long_fields = {f: len(text) for f, text in fields.items() if len(text) > MAX_MATCH_CHARS}
    if long_fields:  # matched on their first characters only: said, with their lengths
        detail.update(match_limit=MAX_MATCH_CHARS, long_fields=long_fields)
    return Evidence(kind=kind, claim=f"{field}: {fields[field]}", generator=rule.generator if rule else None,
                    label=rule.label if rule else None, ai_generated=ai, detail=detail)


class ExifReader:
    """EXIF text fields that say who or what made the image (generation parameters excepted)."""

    name = "exif"

    def read(self, source: EvidenceSource) -> list[Evidence]:
        fields = {name: text for name, text in exif_text(source.image, source.data).items()
                  if not is_generation_parameters(text)}
        return [_claim("exif", fields, source.names)] if fields else []


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1].rsplit(":", 1)[-1]


def xmp_fields(packet: bytes) -> dict[str, str]:
    """The claim-bearing XMP properties (for ``rdf:li`` values, the property that holds them)."""
    import defusedxml.ElementTree as SafeET
    from defusedxml import DefusedXmlException

    if len(packet) > MAX_XMP_BYTES:
        raise EvidenceError(f"XMP packet is {len(packet):,} bytes, over the {MAX_XMP_BYTES:,}-byte limit; not parsed")
    try:
        root = SafeET.fromstring(packet.strip(b"\x00 \r\n\t"), forbid_dtd=True)
    except DefusedXmlException as exc:
        raise EvidenceError(f"XMP refused: {type(exc).__name__} (DTDs and entities are not read)") from None
    except SafeET.ParseError as exc:
        raise EvidenceError(f"XMP is not well-formed XML ({exc})") from None
    elements = list(itertools.islice(root.iter(), MAX_XMP_ELEMENTS + 1))
    if len(elements) > MAX_XMP_ELEMENTS:
        raise EvidenceError(f"XMP has over {MAX_XMP_ELEMENTS:,} elements; not read")
    parents = {child: parent for parent in elements for child in parent}
    fields: dict[str, str] = {}
    for element in elements:
        name = _local(element.tag)
        if name == "li":  # rdf:Alt / rdf:Seq / rdf:Bag item: named after the property above it
            holder = parents.get(parents.get(element))
            name = _local(holder.tag) if holder is not None else name
        text = (element.text or "").strip()
        if name in XMP_CLAIM_FIELDS and text and len(element) == 0:
            fields.setdefault(name, text)
        for attr, value in element.attrib.items():
            if _local(attr) in XMP_CLAIM_FIELDS and value.strip():
                fields.setdefault(_local(attr), value.strip())
    return fields


class XmpReader:
    """XMP: IPTC DigitalSourceType, CreatorTool, Credit, description (parsed with defusedxml)."""

    name = "xmp"

    def read(self, source: EvidenceSource) -> list[Evidence]:
        packet = xmp_packet(source.image)
        if not packet:
            return []
        fields = xmp_fields(packet)
        return [_claim("xmp", fields, source.names)] if fields else []
