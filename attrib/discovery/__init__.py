"""Discovery: grouping images that no enrolled generator claims into candidate new generators.

Owns the library side of ``attrib discover`` and of ``attrib serve``'s discover page: which images are grouped
(:mod:`.inputs`: a batch's unknown answers, files, folders), the images embedded and placed in the gallery's
whitened (fused) space and scored against every enrolled generator (:mod:`.space`), density clustering with its
membership, one-source and tightness checks (:mod:`.clustering`, scikit-learn's HDBSCAN, loaded only when a
grouping runs), the photograph check (:mod:`.photos`), the ranked candidates and their JSON
(:mod:`.candidates`) and enrolling one candidate (:mod:`.enroll`). Grouping needs scikit-learn
(``attrib[eval]``). The HTML page is :mod:`attrib.report.discovery`'s, the evaluation of discovery
:mod:`attrib.evaluation.discovery`'s.

May import (the layers below it in the import contract, pyproject.toml): :mod:`attrib.gallery`,
:mod:`attrib.enrollment`, :mod:`attrib.routing`, :mod:`attrib.upkeep`, :mod:`attrib.scoring`, :mod:`attrib.storage`,
:mod:`attrib.index`, :mod:`attrib.delivery`, :mod:`attrib.extractors`, :mod:`attrib.evidence`, :mod:`attrib.synthetic`,
:mod:`attrib.images`, :mod:`attrib.host`, :mod:`attrib.names`, :mod:`attrib.errors`, :mod:`attrib.version`.
Never :mod:`attrib.report` (which ``attrib serve`` must not reach).
"""
