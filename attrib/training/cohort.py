"""Embed the impostor cohort with the built-in ``residual`` extractor and write the shipped file.

The cohort (:mod:`attrib.synthetic.cohort`) is embedded once per gallery and extractor; for the
default extractor the vectors ship with attrib (``attrib/extractors/residual/cohort.npz``) so that
a first enroll does not render 400 images, with the cohort of each delivery version of the default
ladder. Reproduce them (about a minute; needs scikit-image for the photographs)::

    python -m attrib.training.cohort
"""

from __future__ import annotations

import os
import sys
from typing import Sequence

import numpy as np

from ..delivery import DEFAULT_LADDER, delivered
from ..extractors.residual import COHORT_PATH, ResidualExtractor
from ..extractors.contract import BoundExtractor
from ..host.manager import ExtractorSpec
from ..synthetic import cohort


def write(out: str = COHORT_PATH, rungs: Sequence[str] = DEFAULT_LADDER) -> np.ndarray:
    """Embed the cohort with ``residual``, as it is and after each delivery ``rungs`` (the default ladder's
    versions, :mod:`attrib.delivery.versions`), and write ``out`` (through a temporary file and os.replace)."""
    bound = BoundExtractor(ExtractorSpec(ResidualExtractor, "attrib.extractors.residual"))
    vectors = cohort.embed(bound)
    arrays: dict[str, np.ndarray] = {"vectors": vectors, "cohort_version": np.array(cohort.COHORT_VERSION),
                                     "extractor": np.array(bound.identity.key), "rungs": np.array(list(rungs))}
    arrays.update((f"delivered_{i}", cohort.embed(delivered(bound, rung))) for i, rung in enumerate(rungs))
    tmp = f"{out}.tmp.npz"
    np.savez(tmp, **arrays)  # type: ignore[arg-type]
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
