"""Extractors: what turns an image into an embedding.

Owns the extractor contract and the host-side output checks (:mod:`.contract`), resolving
names such as ``residual+effnet`` into bound extractors (:mod:`.resolve`), helpers any plugin
may use (:mod:`.options`: option parsing, local weights lookup, weights digest) and the
built-in ``residual`` extractor with its data (:mod:`.residual`).

May import (the layers below it in the import contract, pyproject.toml): :mod:`attrib.images`,
:mod:`attrib.host`, :mod:`attrib.names`, :mod:`attrib.errors`, :mod:`attrib.version`. Never :mod:`attrib.evidence` or
:mod:`attrib.synthetic` (its siblings).
"""

DEFAULT_EXTRACTOR = "residual"  # used when neither --extractor nor the gallery names one
