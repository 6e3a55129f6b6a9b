"""Embed the impostor cohort with the built-in ``residual`` extractor and write the shipped file.

The cohort (:mod:`attrib.synthetic.cohort`) is embedded once per gallery and extractor; for the
default extractor the vectors ship with attrib (``attrib/extractors/residual/cohort.npz``) so that
a first enroll does not render 400 images. Reproduce them (about 15 s; needs scikit-image for
the photographs)::

    python -m attrib.training.cohort
"""

from __future__ import annotations

import os
import sys
from typing import Sequence

import numpy as np

from ..extractors.residual import COHORT_PATH, ResidualExtractor
from ..extractors.contract import BoundExtractor
from ..host.manager import ExtractorSpec
from ..synthetic import cohort


def write(out: str = COHORT_PATH) -> np.ndarray:
    """Embed the cohort with ``residual`` and write ``out`` (through a temporary file and os.replace)."""
    bound = BoundExtractor(ExtractorSpec(ResidualExtractor, "attrib.extractors.residual"))
    vectors = cohort.embed(bound)
    tmp = f"{out}.tmp.npz"
    np.savez(tmp, vectors=vectors, cohort_version=np.array(cohort.COHORT_VERSION),
             extractor=np.array(bound.identity.key))
    os.replace(tmp, out)
    return vectors


def main(argv: Sequence[str] | None = None) -> None:
    import argparse

    parser = argparse.ArgumentParser(prog="python -m attrib.training.cohort", description=__doc__.splitlines()[0])
    parser.add_argument("out", nargs="?", default=COHORT_PATH)
    args = parser.parse_args(argv)
    vectors = write(args.out)
    print(f"wrote {args.out}: {len(vectors)} cohort vectors of dim {vectors.shape[1]}", file=sys.stderr)


if __name__ == "__main__":
    main()
