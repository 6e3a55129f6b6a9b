"""Comparing results that must agree on any CPU: what they decide exactly, their floats within a stated
tolerance.

Two runs that embed, whiten or search the same images in batches of another shape (a batch resumed
after Ctrl-C, a server answering concurrent requests together, Ray actors, a GPU copy of an index)
go through other BLAS and SIMD kernels (matrix-vector for one row, matrix-matrix for several, each
picked by CPU), which sum in another order. Their similarities then differ in the last bits of a
float32 (measured: up to 1.2e-7 for the whitening of a batch of 40 against one row at a time), which
the 6-decimal rounding of a JSON answer can show. What an answer decides (paths, decisions,
generators, the order of the candidates, errors) must not differ.
"""

from __future__ import annotations

import re

import numpy as np

SCORE_ATOL = 1e-5  # similarities summed in another order (~1e-7) and rounded to 6 decimals (5e-7): 20x margin
CONFIDENCE_ATOL = 1e-3  # rounded to 4 decimals, and steep: a logistic of the margin over a spread as small as 1e-3
PRINTED_ATOL = 2e-3  # numbers a reason prints with 3 decimals: a last digit either way
_PRINTED = re.compile(r"-?\d+\.\d+")


def assert_same_answers(got, want, where: str = "answer") -> None:
    """``got`` and ``want`` (JSON answers, or lists of them) hold the same keys, strings, whole numbers,
    flags and nulls, and floats within SCORE_ATOL (CONFIDENCE_ATOL under a ``confidence`` key); a string
    may differ only in the numbers it prints, each within PRINTED_ATOL."""
    _same(got, want, None, where)


def _same(got, want, key, where: str) -> None:
    if isinstance(want, dict):
        assert isinstance(got, dict) and got.keys() == want.keys(), f"{where}: {got!r} != {want!r}"
        for name in want:
            _same(got[name], want[name], name, f"{where}.{name}")
    elif isinstance(want, list):
        assert isinstance(got, list) and len(got) == len(want), f"{where}: {got!r} != {want!r}"
        for i, (g, w) in enumerate(zip(got, want)):
            _same(g, w, key, f"{where}[{i}]")
    elif isinstance(want, float):
        atol = CONFIDENCE_ATOL if key == "confidence" else SCORE_ATOL
        assert type(got) in (int, float) and abs(got - want) <= atol, f"{where}: {got!r} != {want!r} (+- {atol})"
    elif isinstance(want, str) and isinstance(got, str) and got != want:
        assert _PRINTED.split(got) == _PRINTED.split(want), f"{where}: {got!r} != {want!r}"
        for g, w in zip(_PRINTED.findall(got), _PRINTED.findall(want)):
            assert abs(float(g) - float(w)) <= PRINTED_ATOL, f"{where}: {got!r} != {want!r} (+- {PRINTED_ATOL})"
    else:
        assert type(got) is type(want) and got == want, f"{where}: {got!r} != {want!r}"


def assert_same_neighbours(got: tuple[np.ndarray, np.ndarray], want: tuple[np.ndarray, np.ndarray],
                           atol: float = SCORE_ATOL) -> None:
    """Two top-k searches ((similarities, ids), [queries, k] each) agree: similarities rank by rank within
    ``atol``, and the same ids wherever a similarity is not within ``atol`` of the one next to it (a
    near-tie may come out in either order)."""
    (got_sims, got_ids), (want_sims, want_ids) = got, want
    assert got_sims.shape == want_sims.shape == got_ids.shape == want_ids.shape
    worst = np.abs(np.asarray(got_sims, np.float64) - want_sims).max(initial=0.0)
    assert worst <= atol, f"similarities differ by up to {worst:.3g} (> {atol})"
    tied = np.abs(np.diff(np.asarray(want_sims, np.float64), axis=1)) <= 2 * atol
    near = np.zeros(want_sims.shape, dtype=bool)
    near[:, :-1] |= tied
    near[:, 1:] |= tied
    assert np.array_equal(got_ids[~near], want_ids[~near]), "other neighbours than the reference search"
