"""Helpers for the CLI usability tests: two quick extractors with small impostor cohorts of their own (so no
test renders the project's cohort), registered as plugins, and a runner of ``attrib`` in-process."""

from __future__ import annotations

import json

import numpy as np
from click.testing import CliRunner

from attrib.cli import cli

from conftest import ColorPercentiles
from gallery_helpers import CohortColorMean


def _cohort_images() -> list[np.ndarray]:
    rng = np.random.default_rng(7)
    return [np.clip(rng.normal(rng.uniform(40, 220, 3), 25, (24, 24, 3)), 0, 255).astype(np.uint8)
            for _ in range(60)]


class CohortColorPct(ColorPercentiles):
    """ColorPercentiles (``colorpct``) with a small impostor cohort of its own: a cheap second extractor."""

    def cohort_vectors(self, version: str) -> np.ndarray:
        vectors = self.embed_batch(_cohort_images())
        return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


def register_both(plugin) -> None:
    """``colormean`` and ``colorpct``, each with its own small cohort, as a throwaway plugin."""
    plugin(CohortColorMean, CohortColorPct, name="test-cli-usability")


def attrib(*args, expect: int | None = 0, stdin: str | None = None):
    """``attrib ARGS...`` in-process; asserts the exit status unless ``expect`` is None."""
    result = CliRunner().invoke(cli, [str(a) for a in args], input=stdin, catch_exceptions=False)
    assert expect is None or result.exit_code == expect, result.output
    return result


def json_lines(text: str) -> list[dict]:
    return [json.loads(line) for line in text.splitlines() if line.startswith("{")]
