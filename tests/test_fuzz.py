"""Short runs of the fuzzers. The loader's (fuzz/fuzz_images.py): mutated PNG, JPEG, WebP, GIF, TIFF and
BMP files give an image or an ImageError, never anything else. The provenance readers'
(fuzz/fuzz_metadata.py): whatever text a file's metadata holds, `attrib inspect --json` and an
`identify --json` record give it one strict JSON line of bounded size. `python fuzz/fuzz_*.py` runs
them longer."""

from __future__ import annotations

import importlib.util
import json
import random
from pathlib import Path

import numpy as np
import pytest

from attrib.errors import ImageError
from attrib.images import LoadedImage, decode_bytes, load_images

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning", "ignore::PIL.Image.DecompressionBombWarning")
FUZZ = Path(__file__).resolve().parents[1] / "fuzz"


def load(name: str):
    spec = importlib.util.spec_from_file_location(name, FUZZ / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def fuzz():
    return load("fuzz_images")


@pytest.fixture(scope="module")
def fuzz_metadata():
    return load("fuzz_metadata")


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


def test_every_metadata_seed_gives_evidence_in_every_container(fuzz_metadata, tmp_path):
    bases = fuzz_metadata.base_images()
    check = fuzz_metadata.Checker(tmp_path)
    for seed in range(40):  # each container drawn several times over
        rng = random.Random(seed)
        for channel, fields in fuzz_metadata.SEEDS:
            assert check(fuzz_metadata.container(channel, fields, rng, bases)) >= 1, (channel, fields)


def test_mutated_metadata_gives_one_strict_json_line_per_file(fuzz_metadata):
    stats = fuzz_metadata.run_plain(runs=1500, seed=5, crashes=None)
    assert stats["crashes"] == 0, stats["kinds"]
    assert stats["evidence"] > 1000  # the mutations reach the readers, not only Pillow's refusals


def test_mutated_metadata_through_the_cli_gives_every_file_its_line(fuzz_metadata, tmp_path):
    from click.testing import CliRunner

    from attrib.cli import cli

    fuzz_images = load("fuzz_images")
    bases, rng = fuzz_metadata.base_images(), random.Random(11)
    paths = []
    for i in range(60):
        paths.append(tmp_path / f"{i:02d}.img")
        paths[-1].write_bytes(fuzz_metadata.make_input(rng, bases, fuzz_images.mutate))
    result = CliRunner().invoke(cli, ["inspect", "--json", *map(str, paths)])
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    lines = result.stdout_bytes.decode("utf-8").splitlines()
    for line in lines:
        fuzz_metadata.check_line(line)
    assert [json.loads(line)["path"] for line in lines] == [str(p) for p in paths]
