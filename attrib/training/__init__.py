"""Training: how the shipped model files were made, kept apart from run time.

Owns the residual extractor's learned projection (:mod:`.projection`,
``python -m attrib.training.projection``) and the derivation of its statistics' constants
(:mod:`.constants`). Needs the ``train`` extra (scikit-learn, scikit-image).

May import (the layers below it in the import contract, pyproject.toml): :mod:`attrib.serve`,
:mod:`attrib.batch`, :mod:`attrib.evaluation`, :mod:`attrib.report`, :mod:`attrib.discovery`, :mod:`attrib.gallery`,
:mod:`attrib.enrollment`, :mod:`attrib.routing`, :mod:`attrib.upkeep`, :mod:`attrib.scoring`, :mod:`attrib.storage`,
:mod:`attrib.index`, :mod:`attrib.delivery`, :mod:`attrib.extractors`, :mod:`attrib.evidence`, :mod:`attrib.synthetic`,
:mod:`attrib.images`, :mod:`attrib.host`, :mod:`attrib.names`, :mod:`attrib.errors`, :mod:`attrib.version`. Never
:mod:`attrib.cli` or :mod:`attrib.testing` (its siblings in the top layer); nothing at run time imports
it.
"""
