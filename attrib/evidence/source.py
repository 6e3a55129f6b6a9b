"""What a reader is given: the file's bytes and path, its image opened lazily (header only), the
generator-name rules in force and the reading options (e.g. a C2PA trust list)."""

from __future__ import annotations

import io
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping

from PIL import Image, UnidentifiedImageError

from ..errors import MetadataError
from .names import GeneratorNames, generator_names

C2PA_TRUST_OPTION = "c2pa_trust"  # PEM text of the trust anchors


@dataclass
class EvidenceSource:
    """One file as evidence readers see it.

    ``image`` is a Pillow image: the caller's (decoded or not), else the file opened from
    ``data`` on first use, which parses the header and metadata without decoding pixels.
    ``names`` are the generator-name rules, from ``names_factory`` on first use.
    A file Pillow cannot open raises :class:`attrib.errors.MetadataError` from ``image``.
    """

    data: bytes
    path: Path | None = None
    names_factory: Callable[[], GeneratorNames] = generator_names
    options: Mapping[str, Any] = field(default_factory=dict)
    _image: Image.Image | None = None
    _image_error: str | None = None
    _names: GeneratorNames | None = None

    @property
    def names(self) -> GeneratorNames:
        """The generator-name rules in force, built on first use (a file with nothing to name
        never compiles them)."""
        if self._names is None:
            self._names = self.names_factory()
        return self._names

    @property
    def label(self) -> str:
        return str(self.path) if self.path is not None else "<bytes>"

    @property
    def image(self) -> Image.Image:
        if self._image is None and self._image_error is None:
            try:
                self._image = Image.open(io.BytesIO(self.data))
            except UnidentifiedImageError:
                self._image_error = "metadata cannot be read: not a recognised image file"
            except Exception as exc:  # noqa: BLE001 - any Pillow failure is one line
                self._image_error = f"metadata cannot be read: {str(exc) or type(exc).__name__}"
        if self._image is None:
            raise MetadataError(self._image_error or "metadata cannot be read")
        return self._image

