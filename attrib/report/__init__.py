"""Self-contained HTML reports: one file each, images inlined as ``data:`` URIs, no scripts, no
network references (:mod:`.html` has the building blocks).

- :mod:`.identify`: what ``attrib report`` and ``attrib identify --report`` write, one section per
  query with its nearest enrolled exemplars;
- :mod:`.evaluation`: the ``index.html`` of ``attrib evaluate --report``;
- :mod:`.gallery`: ``attrib gallery show NAME --report``, a generator's enrolled samples as a grid.

It imports only the standard library, Pillow (previews) and :mod:`attrib.errors`; it reads results,
evaluation data and galleries through the objects it is given, never the CLI or storage directly.
"""
