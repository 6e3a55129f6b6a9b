"""A short run of the loader fuzzer (fuzz/fuzz_images.py): mutated PNG, JPEG, WebP, GIF, TIFF and BMP
files give an image or an ImageError, never anything else. `python fuzz/fuzz_images.py` runs it longer."""

from __future__ import annotations

import importlib.util
import random
from pathlib import Path

import numpy as np
import pytest

from attrib.errors import ImageError
from attrib.images import LoadedImage, decode_bytes, load_images

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning", "ignore::PIL.Image.DecompressionBombWarning")
FUZZ = Path(__file__).resolve().parents[1] / "fuzz" / "fuzz_images.py"


@pytest.fixture(scope="module")
def fuzz():
    spec = importlib.util.spec_from_file_location("fuzz_images", FUZZ)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_every_seed_decodes_so_the_mutations_reach_the_decoders(fuzz):
    seeds = fuzz.seed_files()
    formats = {decode_bytes(data, name)[1] for name, data in seeds.items()}
    assert formats == {"PNG", "JPEG", "WEBP", "GIF", "TIFF", "BMP"}


def test_mutated_images_give_an_image_or_an_image_error(fuzz):
    stats = fuzz.run_plain(runs=10_000, seed=12, crashes=None)
    assert stats["crashes"] == 0, stats["kinds"]
    assert stats["decoded"] > 1000 and stats["refused"] > 1000  # both outcomes were reached


def test_mutated_files_through_the_threaded_loader(fuzz, tmp_path):
    seeds = list(fuzz.seed_files().values())
    rng = random.Random(3)
    paths = []
    for i in range(300):
        path = tmp_path / f"{i:03d}.img"
        path.write_bytes(fuzz.mutate(rng.choice(seeds), rng, seeds))
        paths.append(path)
    results = list(load_images(paths, workers=3))
    assert [p for p, _ in results] == paths
    for path, loaded in results:
        assert isinstance(loaded, (LoadedImage, ImageError))
        if isinstance(loaded, LoadedImage):
            assert loaded.pixels.dtype == np.uint8 and loaded.pixels.shape[2] == 3
        else:
            assert str(loaded).startswith(f"{path}: ") and "\n" not in str(loaded)
