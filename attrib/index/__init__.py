"""The FAISS index files of a gallery: a rebuildable cache of its durable vectors, per extractor.

:mod:`.choice` picks the index type for a gallery's size (:func:`~.choice.choose_index_key`) and
builds one; :mod:`.tuning` tunes its search parameter to a measured recall; :mod:`.files` is the
file format (generations, append-only deltas, atomic writes, validation) with search and read-back;
:mod:`.gpu` searches a GPU copy where FAISS has one; :mod:`.whitening` is the fitted whitening as a
value, the transform of the vectors the index stores. Nothing of SQL or scoring.

May import (the layers below it in the import contract, pyproject.toml): :mod:`attrib.delivery`,
:mod:`attrib.extractors`, :mod:`attrib.evidence`, :mod:`attrib.synthetic`, :mod:`attrib.images`,
:mod:`attrib.host`, :mod:`attrib.names`, :mod:`attrib.errors`, :mod:`attrib.version`.
"""
