"""Synthetic data the project makes itself: simulated generators, image conditions, the cohort.

Owns the synthetic generator zoo (:mod:`.zoo`), the image conditions that crop, resize and
re-compress images (:mod:`.conditions`: evaluation protocols and the cohort's delivery) and
the impostor cohort, images of generators nobody enrolls (:mod:`.cohort`). Deterministic:
every image is a pure function of names, seeds and indices; nothing is downloaded. May
import :mod:`attrib.errors` and :mod:`attrib.images`; nothing else of attrib.
"""
