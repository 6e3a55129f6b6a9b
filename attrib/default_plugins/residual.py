"""The built-in ``residual`` extractor, registered through the same hook as any plugin."""

from __future__ import annotations

from attrib import fingerprint
from attrib.hookspecs import hookimpl


class ResidualExtractor:
    """Forensic fingerprint of the noise residual (numpy, no network, no torch); see attrib/fingerprint.py."""

    name = "residual"
    version = fingerprint.VERSION
    dim = fingerprint.DIM
    options_help: dict[str, str] = {}

    def __init__(self, **options: str):
        if options:
            raise TypeError(f"the residual extractor takes no options (got {', '.join(sorted(options))})")

    def embed_batch(self, images):
        return fingerprint.fingerprint_batch(images)


@hookimpl
def register_extractors(register):
    register(ResidualExtractor)
