"""Synthetic data the project makes itself: simulated generators, image conditions, the cohort.

Owns the synthetic generator zoo (:mod:`.zoo`), the image conditions that crop, resize and
re-compress images (:mod:`.conditions`: evaluation protocols and the cohort's delivery) and
the impostor cohort, images of generators nobody enrolls (:mod:`.cohort`). Deterministic:
every image is a pure function of names, seeds and indices (on one machine: numpy's float32 kernels differ
by CPU, so a few pixels may round the other way elsewhere); nothing is downloaded.

May import (the layers below it in the import contract, pyproject.toml): :mod:`attrib.images`,
:mod:`attrib.host`, :mod:`attrib.names`, :mod:`attrib.errors`, :mod:`attrib.version`. Never :mod:`attrib.extractors` or
:mod:`attrib.evidence` (its siblings).
"""
