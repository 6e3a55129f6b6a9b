"""The built-in ``residual`` extractor, registered through the same hook as any plugin.

Self-contained: the statistics (:mod:`.fingerprint`), the learned projection applied at run time
(:mod:`.projection`) and their data files live in this folder; how they were made lives in
:mod:`attrib.training`.
"""

from __future__ import annotations

import os
from functools import lru_cache
from typing import TYPE_CHECKING, Any, Callable, Sequence

from ...errors import BadOption
from ...host.hookspecs import hookimpl
from .identity import DIM, VERSION

if TYPE_CHECKING:
    import numpy as np

COHORT_PATH = os.path.join(os.path.dirname(os.path.abspath(__file__)), "cohort.npz")


@lru_cache(maxsize=1)
def _shipped_cohort() -> "tuple[str, str, dict[str, np.ndarray]] | None":
    """(cohort version, extractor key, {rung: vectors}): "original", and each delivery version shipped."""
    import numpy as np

    if not os.path.exists(COHORT_PATH):
        return None
    with np.load(COHORT_PATH, allow_pickle=False) as npz:
        rungs = [str(rung) for rung in npz["rungs"]] if "rungs" in npz.files else []
        vectors = {"original": npz["vectors"].astype(np.float32)}
        vectors.update((rung, npz[f"delivered_{position}"].astype(np.float32)) for position, rung in enumerate(rungs))
        return str(npz["cohort_version"]), str(npz["extractor"]), vectors


class ResidualExtractor:
    """Forensic fingerprint of the noise residual (numpy, no network, no torch)."""

    name = "residual"
    version = VERSION
    dim = DIM
    description = "forensic fingerprint of the noise residual (numpy only, no network, no torch)"
    options_help: dict[str, str] = {}
    identity_options: tuple[str, ...] = ()

    def __init__(self, **options: str):
        if options:
            raise BadOption(f"the residual extractor takes no options (got {', '.join(sorted(options))})")

    def embed_batch(self, images: Sequence[np.ndarray]) -> np.ndarray:
        from . import fingerprint  # numpy: imported when the first batch is embedded, not at registration

        return fingerprint.fingerprint_batch(images)

    def cohort_vectors(self, version: str) -> "np.ndarray | None":
        """The impostor cohort (attrib.synthetic.cohort) as this version embeds it, shipped beside this file."""
        return self.delivered_cohort_vectors(version, "original")

    def delivered_cohort_vectors(self, version: str, rung: str) -> "np.ndarray | None":
        """The same, each cohort image embedded after the coding ``rung`` (a delivery version's cohort)."""
        shipped = _shipped_cohort()
        if shipped is None or shipped[0] != version or shipped[1] != f"{self.name}@{self.version}":
            return None
        return shipped[2].get(rung)


@hookimpl
def register_extractors(register: Callable[[Any], None]) -> None:
    register(ResidualExtractor)
