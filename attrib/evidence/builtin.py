"""The built-in evidence readers, registered through the same hook as a plugin's."""

from __future__ import annotations

from ..host.hookspecs import hookimpl
from .c2pa_manifest import C2paReader
from .exif_xmp import ExifReader, XmpReader
from .parameters import GenerationParametersReader


@hookimpl
def register_evidence(register):
    for reader in (C2paReader, GenerationParametersReader, ExifReader, XmpReader):
        register(reader)
