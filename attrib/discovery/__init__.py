"""Discovery: grouping images that no enrolled generator claims into candidate new generators.

Owns ``attrib discover``'s library side: which images are grouped (:mod:`.inputs`: a batch's unknown
answers, files, folders), the images embedded and placed in the gallery's whitened (fused) space and scored
against every enrolled generator (:mod:`.space`), density clustering with its membership, one-source and
tightness checks (:mod:`.clustering`, scikit-learn's HDBSCAN), the photograph check (:mod:`.photos`), the
ranked candidates and their JSON (:mod:`.candidates`), the HTML page (:mod:`.page`), enrolling one candidate
(:mod:`.enroll`) and the evaluation of discovery (:mod:`.evaluate`). Needs scikit-learn (``attrib[eval]``).

May import (the layers below it in the import contract, pyproject.toml): :mod:`attrib.serve`,
:mod:`attrib.batch`, :mod:`attrib.evaluation`, :mod:`attrib.report`, :mod:`attrib.gallery`,
:mod:`attrib.enrollment`, :mod:`attrib.routing`, :mod:`attrib.upkeep`, :mod:`attrib.scoring`, :mod:`attrib.storage`,
:mod:`attrib.index`, :mod:`attrib.delivery`, :mod:`attrib.extractors`, :mod:`attrib.evidence`, :mod:`attrib.synthetic`,
:mod:`attrib.images`, :mod:`attrib.host`, :mod:`attrib.errors`, :mod:`attrib.version`.
"""
