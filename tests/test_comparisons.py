"""The comparisons of results across CPUs and batch shapes (tests/comparisons.py) still fail on what matters."""

from __future__ import annotations

import numpy as np
import pytest

from comparisons import assert_same_answers, assert_same_neighbours

ANSWER = {"path": "a.png", "decision": "red", "score": 0.912345, "confidence": 0.8123, "error": None,
          "reason": "red: 0.112 above its threshold, 0.301 ahead of blue", "candidates": [{"generator": "red"}]}


def test_answers_agree_to_the_last_bits_of_their_floats_but_not_in_what_they_decide():
    close = {**ANSWER, "score": 0.912346, "confidence": 0.8124,
             "reason": "red: 0.113 above its threshold, 0.301 ahead of blue"}
    assert_same_answers([close], [ANSWER])
    for changed in ({"decision": "unknown"}, {"score": 0.9124}, {"confidence": 0.82}, {"error": "x"},
                    {"reason": "red: 0.120 above its threshold, 0.301 ahead of blue"},
                    {"reason": "red: 0.112 above its threshold, 0.301 ahead of green"},
                    {"candidates": [{"generator": "blue"}]}, {"candidates": []}):
        with pytest.raises(AssertionError):
            assert_same_answers({**ANSWER, **changed}, ANSWER)
    with pytest.raises(AssertionError):
        assert_same_answers({**ANSWER, "extra": 1}, ANSWER)


def test_neighbours_agree_up_to_near_ties():
    sims = np.array([[0.9, 0.8, 0.8000001, 0.5]], np.float32)
    ids = np.array([[1, 2, 3, 4]])
    assert_same_neighbours((sims + 1e-7, ids), (sims, ids))
    assert_same_neighbours((sims[:, [0, 2, 1, 3]], ids[:, [0, 2, 1, 3]]), (sims, ids))  # a near-tie swapped
    with pytest.raises(AssertionError):
        assert_same_neighbours((sims, ids[:, [1, 0, 2, 3]]), (sims, ids))  # 0.9 and 0.8 are no tie
    with pytest.raises(AssertionError):
        assert_same_neighbours((sims + 1e-4, ids), (sims, ids))
