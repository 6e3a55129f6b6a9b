"""Keeping a gallery current: whether its fits and index files can be trusted, and bringing them
up to date.

:mod:`.freshness` decides what is stale (the whitening and calibration against the revision of the
vectors, an index generation against the database) and loads the index of one extractor when
nothing is (:class:`.freshness.LoadedIndex`); :mod:`.refit` refits and recalibrates, incrementally
where it can, and extends or rebuilds the index; :mod:`.check` is ``attrib gallery check`` and its
repair.

May import (the layers below it in the import contract, pyproject.toml): :mod:`attrib.scoring`,
:mod:`attrib.storage`, :mod:`attrib.index`, :mod:`attrib.delivery`, :mod:`attrib.extractors`, :mod:`attrib.evidence`,
:mod:`attrib.synthetic`, :mod:`attrib.images`, :mod:`attrib.host`, :mod:`attrib.names`, :mod:`attrib.errors`,
:mod:`attrib.version`.
"""
