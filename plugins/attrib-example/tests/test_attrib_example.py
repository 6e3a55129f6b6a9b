"""Tests for attrib-example; copy these along with the plugin."""

import numpy as np
import pytest

from attrib.testing import check_extractor

try:
    import attrib_example
except ImportError:  # running from a checkout without `pip install -e plugins/attrib-example`
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    import attrib_example

from attrib_example import ColorStats


def test_conformance_kit():
    report = check_extractor(ColorStats)
    print(report)
    assert report.dim == 24
    assert report.images_per_second > 0


def test_conformance_kit_with_options_and_instance():
    check_extractor(ColorStats, options={"max_side": "64"}, speed=False)
    check_extractor(ColorStats(), speed=False)


def test_registers_through_the_hook():
    registered = []
    attrib_example.register_extractors(register=registered.append)
    assert registered == [ColorStats]


def test_features_mean_something():
    black = np.zeros((32, 32, 3), np.uint8)
    red = black.copy()
    red[..., 0] = 255
    out = ColorStats().embed_batch([black, red])
    assert out.shape == (2, 24) and out.dtype == np.float32
    assert out[1, 0] == pytest.approx(1.0, abs=1e-5)  # mean red
    assert out[0, 0] == pytest.approx(0.0, abs=1e-5)


def test_bad_option_is_reported():
    with pytest.raises(ValueError, match="max_side"):
        ColorStats(max_side="big")
