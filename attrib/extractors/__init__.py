"""Extractors: what turns an image into an embedding.

Owns the extractor contract and the host-side output checks (:mod:`.contract`), resolving
names such as ``residual+effnet`` into bound extractors (:mod:`.resolve`), helpers any plugin
may import (:mod:`.options`: option parsing, local weights lookup, weights digest) and the
built-in ``residual`` extractor with its data (:mod:`.residual`). May import
:mod:`attrib.errors` and :mod:`attrib.host`; never storage, scoring or the CLI.
"""

DEFAULT_EXTRACTOR = "residual"  # used when neither --extractor nor the gallery names one
