"""The built-in evidence readers, registered through the same hook as a plugin's.

Registering imports nothing but this module: each reader's module (Pillow parsing, JSON,
defusedxml, c2pa) is imported when a reader is first built, so commands that never read
evidence start as fast as before.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any, Callable

from ..host.hookspecs import hookimpl

if TYPE_CHECKING:
    from .item import Evidence
    from .source import EvidenceSource


class LazyReader:
    """A reader whose implementation (``target``, ``module:Class``) is imported when built."""

    name = ""
    target = ""

    def __init__(self) -> None:
        module, _, cls = self.target.partition(":")
        self.impl = getattr(importlib.import_module(module), cls)()

    def read(self, source: EvidenceSource) -> list[Evidence]:
        return self.impl.read(source)


class C2pa(LazyReader):
    """C2PA manifest stores (Content Credentials), validated with c2pa-python (attrib[c2pa])."""

    name, target = "c2pa", "attrib.evidence.c2pa_manifest:C2paReader"


class GenerationParameters(LazyReader):
    """Generation parameters written by AUTOMATIC1111/Forge/Fooocus, ComfyUI, NovelAI and InvokeAI."""

    name, target = "generation-parameters", "attrib.evidence.parameters:GenerationParametersReader"


class Exif(LazyReader):
    """EXIF text fields that say who or what made the image (generation parameters excepted)."""

    name, target = "exif", "attrib.evidence.exif_xmp:ExifReader"


class Xmp(LazyReader):
    """XMP: IPTC DigitalSourceType, CreatorTool, Credit, description (parsed with defusedxml)."""

    name, target = "xmp", "attrib.evidence.exif_xmp:XmpReader"


BUILTIN_READERS = (C2pa, GenerationParameters, Exif, Xmp)


@hookimpl
def register_evidence(register: Callable[[Any], None]) -> None:
    for reader in BUILTIN_READERS:
        register(reader)
