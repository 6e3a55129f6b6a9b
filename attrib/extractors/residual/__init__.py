"""The built-in ``residual`` extractor, registered through the same hook as any plugin.

Self-contained: the statistics (:mod:`.fingerprint`), the learned projection applied at run time
(:mod:`.projection`) and their data files live in this folder; how they were made lives in
:mod:`attrib.training`.
"""

from __future__ import annotations

from ...errors import BadOption
from ...host.hookspecs import hookimpl
from . import fingerprint


class ResidualExtractor:
    """Forensic fingerprint of the noise residual (numpy, no network, no torch)."""

    name = "residual"
    version = fingerprint.VERSION
    dim = fingerprint.DIM
    description = "forensic fingerprint of the noise residual (numpy only, no network, no torch)"
    options_help: dict[str, str] = {}
    identity_options: tuple[str, ...] = ()

    def __init__(self, **options: str):
        if options:
            raise BadOption(f"the residual extractor takes no options (got {', '.join(sorted(options))})")

    def embed_batch(self, images):
        return fingerprint.fingerprint_batch(images)


@hookimpl
def register_extractors(register):
    register(ResidualExtractor)
