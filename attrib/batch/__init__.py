"""Batch identification and verification as a pipeline: paths streamed from arguments, lists and
standard input (:mod:`.sources`), one record per image written and flushed as it comes, to JSON
lines or CSV, resumable (:mod:`.records`, :mod:`.output`), a loop that counts what it did and stops
cleanly on Ctrl-C (:mod:`.run`), and the same over a Ray cluster (:mod:`.ray_runner`, optional).
numpy, the gallery and Ray are loaded only once a batch runs.

May import (the layers below it in the import contract, pyproject.toml): :mod:`attrib.discovery`, :mod:`attrib.gallery`,
:mod:`attrib.enrollment`, :mod:`attrib.routing`, :mod:`attrib.upkeep`, :mod:`attrib.scoring`, :mod:`attrib.storage`,
:mod:`attrib.index`, :mod:`attrib.delivery`, :mod:`attrib.extractors`, :mod:`attrib.evidence`, :mod:`attrib.synthetic`,
:mod:`attrib.images`, :mod:`attrib.host`, :mod:`attrib.names`, :mod:`attrib.errors`, :mod:`attrib.version`. Never
:mod:`attrib.serve`, :mod:`attrib.evaluation` (its siblings) or :mod:`attrib.report`.
"""
