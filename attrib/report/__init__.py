"""Self-contained HTML reports: one file each, images inlined as ``data:`` URIs, no scripts, no
network references (:mod:`.html` has the building blocks).

- :mod:`.identify`: what ``attrib report`` and ``attrib identify --report`` write, one section per
  query with its nearest enrolled exemplars;
- :mod:`.evaluation`: the ``index.html`` of ``attrib evaluate --report``;
- :mod:`.gallery`: ``attrib gallery show NAME --report``, a generator's enrolled samples as a grid,
  scored held-out on the gallery's loaded index;
- :mod:`.discovery`: ``attrib discover --report``, an exemplar grid per candidate generator.

May import (the layers below it in the import contract, pyproject.toml): :mod:`attrib.discovery`, :mod:`attrib.gallery`,
:mod:`attrib.enrollment`, :mod:`attrib.routing`, :mod:`attrib.upkeep`, :mod:`attrib.scoring`, :mod:`attrib.storage`,
:mod:`attrib.index`, :mod:`attrib.delivery`, :mod:`attrib.extractors`, :mod:`attrib.evidence`, :mod:`attrib.synthetic`,
:mod:`attrib.images`, :mod:`attrib.host`, :mod:`attrib.names`, :mod:`attrib.errors`, :mod:`attrib.version`.
"""
