"""Shared fixtures. Installed third-party plugins are never autoloaded in tests."""

from __future__ import annotations

import sys
import types

import numpy as np
import pytest
from PIL import Image

sys._called_from_test = True  # attrib.host.manager skips entry points under test

from attrib import hookimpl  # noqa: E402
from attrib.host.manager import pm  # noqa: E402


class ColorMean:
    """Test extractor: per-channel mean and std, centred; separates colour-cast images."""

    name = "colormean"
    version = "1"
    dim = 6

    def __init__(self, **options):
        self.options = options

    def embed_batch(self, images):
        rows = []
        for im in images:
            flat = im.reshape(-1, 3).astype(np.float32)
            rows.append(np.concatenate([flat.mean(0) - 127.5, flat.std(0) - 40.0]))
        return np.stack(rows).astype(np.float32)


class ColorPercentiles:
    """A second test extractor, for fusion: per-channel 25th and 75th percentiles, centred."""

    name = "colorpct"
    version = "1"
    dim = 6

    def __init__(self, **options):
        pass

    def embed_batch(self, images):
        rows = [np.percentile(im.reshape(-1, 3), [25, 75], axis=0).ravel() - 127.5 for im in images]
        return np.stack(rows).astype(np.float32)


def register_plugin(name: str, *classes):
    module = types.ModuleType(name)

    @hookimpl
    def register_extractors(register):
        for cls in classes:
            register(cls)

    module.register_extractors = register_extractors
    pm.register(module, name=name)
    return module


@pytest.fixture
def plugin():
    """Register extractor classes as a throwaway plugin; unregistered afterwards."""
    registered = []

    def add(*classes, name=None):
        module = register_plugin(name or f"test-plugin-{len(registered)}", *classes)
        registered.append(module)
        return module

    try:
        yield add
    finally:
        for module in registered:
            pm.unregister(module)


@pytest.fixture
def colormean(plugin):
    plugin(ColorMean, name="test-colormean")
    return ColorMean


CASTS = {"red": (200, 60, 60), "green": (60, 200, 60), "blue": (60, 60, 200), "gray": (128, 128, 128)}


def make_images(folder, generator: str, n: int, size=(96, 80), seed: int = 0, fmt="png"):
    """Write n noisy images with the colour cast of ``generator`` (a key of CASTS)."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    paths = []
    for i in range(n):
        base = np.array(CASTS[generator], dtype=np.float32)
        arr = np.clip(rng.normal(base, 25, (size[1], size[0], 3)), 0, 255).astype(np.uint8)
        path = folder / f"{generator}_{seed}_{i}.{fmt}"
        Image.fromarray(arr).save(path)
        paths.append(path)
    return paths


@pytest.fixture
def make_set(tmp_path):
    def make(generator, n, seed=0, **kw):
        return make_images(tmp_path / "data" / f"{generator}-{seed}", generator, n, seed=seed, **kw)

    return make
