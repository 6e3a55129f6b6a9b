"""The one image loader: every mode to RGB, orientation, animations, and clear errors."""

from __future__ import annotations

import io
import warnings

import numpy as np
import pytest
from PIL import Image

from attrib import images
from attrib.errors import AttribError, ImageError
from attrib.images import LoadedImage, decode_workers, iter_image_files, load_image, load_images, lossy_coding


def rgb(w=80, h=70, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)


@pytest.mark.parametrize(
    "mode,ext",
    [("L", "png"), ("LA", "png"), ("P", "png"), ("RGBA", "png"), ("CMYK", "jpg"), ("I;16", "png"),
     ("RGB", "webp"), ("RGB", "bmp"), ("RGB", "tiff"), ("1", "png")],
)
def test_every_mode_becomes_rgb_uint8(tmp_path, mode, ext):
    image = Image.fromarray(rgb())
    if mode == "I;16":
        image = Image.fromarray((np.arange(80 * 70, dtype=np.uint16).reshape(70, 80) * 9))
    else:
        image = image.convert(mode)
    path = tmp_path / f"x.{ext}"
    image.save(path)
    loaded = load_image(path)
    assert loaded.pixels.dtype == np.uint8 and loaded.pixels.shape == (70, 80, 3)
    assert len(loaded.sha256) == 64 and loaded.size_bytes == path.stat().st_size


def test_sixteen_bit_keeps_its_range(tmp_path):
    ramp = (np.linspace(0, 65535, 80 * 70).reshape(70, 80)).astype(np.uint16)
    Image.fromarray(ramp).save(tmp_path / "ramp.png")
    px = load_image(tmp_path / "ramp.png").pixels
    assert px.min() == 0 and px.max() == 255


def test_alpha_is_composited_on_white(tmp_path):
    arr = np.zeros((70, 80, 4), np.uint8)
    arr[..., 0] = 255  # red, fully transparent
    Image.fromarray(arr, "RGBA").save(tmp_path / "a.png")
    assert (load_image(tmp_path / "a.png").pixels == 255).all()


def test_exif_orientation_is_applied(tmp_path):
    image = Image.fromarray(rgb(120, 70))
    exif = image.getexif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise on display
    image.save(tmp_path / "o.jpg", exif=exif)
    assert load_image(tmp_path / "o.jpg").pixels.shape == (120, 70, 3)


def test_animation_uses_first_frame(tmp_path):
    frames = [Image.new("RGB", (80, 80), c) for c in ((255, 0, 0), (0, 0, 255))]
    frames[0].save(tmp_path / "anim.gif", save_all=True, append_images=frames[1:])
    px = load_image(tmp_path / "anim.gif").pixels
    assert px[..., 0].mean() > 200 and px[..., 2].mean() < 50


@pytest.mark.parametrize(
    "content,needle",
    [(b"", "empty"), (b"hello world", "not a recognised image"), (b"\x89PNG\r\n\x1a\n" + b"\0" * 40, "not a recognised image|cannot decode")],
)
def test_bad_files_raise_one_clear_error(tmp_path, content, needle):
    path = tmp_path / "bad.png"
    path.write_bytes(content)
    with pytest.raises(ImageError, match=needle) as info:
        load_image(path)
    assert str(path) in str(info.value)


def test_truncated_file(tmp_path):
    Image.fromarray(rgb(200, 200)).save(tmp_path / "full.png")
    data = (tmp_path / "full.png").read_bytes()
    (tmp_path / "cut.png").write_bytes(data[: len(data) // 2])
    with pytest.raises(ImageError, match="truncated|cannot decode"):
        load_image(tmp_path / "cut.png")


def test_too_small_and_folder_and_missing(tmp_path):
    Image.new("RGB", (63, 500)).save(tmp_path / "thin.png")
    with pytest.raises(ImageError, match="63x500 px; at least 64"):
        load_image(tmp_path / "thin.png")
    with pytest.raises(ImageError, match="is a folder"):
        load_image(tmp_path)
    with pytest.raises(ImageError, match="no such file"):
        load_image(tmp_path / "nope.png")


def test_decompression_bomb_limit(tmp_path, monkeypatch):
    Image.fromarray(rgb(300, 300)).save(tmp_path / "big.png")
    monkeypatch.setattr(images, "MAX_PIXELS", 10_000)
    with pytest.raises(ImageError, match="safety limit|decompression"):
        load_image(tmp_path / "big.png")


def test_iter_image_files_recurses_by_extension_any_case(tmp_path):
    (tmp_path / "a" / "b").mkdir(parents=True)
    for name in ("a/x.PNG", "a/b/y.jpeg", "a/b/z.TIF", "a/notes.txt", "a/.hidden.png"):
        (tmp_path / name).write_bytes(b"x")
    found = [p.relative_to(tmp_path).as_posix() for p in iter_image_files([tmp_path / "a"])]
    assert found == ["a/x.PNG", "a/b/y.jpeg", "a/b/z.TIF"]
    # a path that is not a folder is the loader's to judge, for that path only
    assert list(iter_image_files([tmp_path / "missing", tmp_path / "a"]))[:2] == [tmp_path / "missing",
                                                                               tmp_path / "a" / "x.PNG"]


def mixed_folder(tmp_path, n=24):
    """n images of different sizes and formats, with an unreadable file and a missing one among them."""
    paths = []
    for i in range(n):
        path = tmp_path / f"{i:03d}.{'png' if i % 2 else 'webp'}"
        Image.fromarray(rgb(64 + 3 * i, 70 + i, seed=i)).save(path, lossless=True)
        paths.append(path)
    (tmp_path / "notes.png").write_text("not an image")
    paths.insert(5, tmp_path / "notes.png")
    paths.insert(17, tmp_path / "gone.png")
    return paths


@pytest.mark.parametrize("workers", [2, 5])
def test_load_images_on_threads_gives_the_serial_results_in_input_order(tmp_path, workers):
    paths = mixed_folder(tmp_path)
    serial = list(load_images(paths, workers=1))
    threaded = list(load_images(paths, workers=workers))
    assert [p for p, _ in threaded] == [p for p, _ in serial] == paths
    for (_, a), (_, b) in zip(serial, threaded):
        if isinstance(a, LoadedImage):
            assert isinstance(b, LoadedImage) and a.sha256 == b.sha256
            np.testing.assert_array_equal(a.pixels, b.pixels)
        else:
            assert isinstance(b, ImageError) and str(a) == str(b)
    assert "not a recognised image file" in str(threaded[5][1]) and "no such file" in str(threaded[17][1])


@pytest.mark.parametrize("workers", [1, 2])
def test_load_results_among_the_paths_are_passed_on_in_their_place(tmp_path, workers):
    """Images decoded elsewhere from their bytes (image_from_bytes, as the server does) mixed with paths: each
    item keeps its place, and the decoded ones equal what loading their files gives."""
    paths = mixed_folder(tmp_path)
    expected = list(load_images(paths, workers=1))
    mixed = []
    for position, path in enumerate(paths):
        if position % 3 or not path.exists():
            mixed.append(path)
        else:
            try:
                mixed.append((path, images.image_from_bytes(path, path.read_bytes())))
            except AttribError as exc:
                mixed.append((path, exc))
    got = list(load_images(mixed, workers=workers))
    assert [p for p, _ in got] == paths
    assert sum(isinstance(item, tuple) for item in mixed) >= 5
    for (_, a), (_, b), item in zip(expected, got, mixed):
        if isinstance(item, tuple):
            assert b is item[1]  # passed on, not loaded again
        if isinstance(a, LoadedImage):
            assert isinstance(b, LoadedImage) and (a.sha256, a.format, a.size_bytes) == (b.sha256, b.format, b.size_bytes)
            np.testing.assert_array_equal(a.pixels, b.pixels)
        else:
            assert str(a) == str(b)


def test_load_images_decodes_a_bounded_number_ahead(tmp_path):
    paths = mixed_folder(tmp_path, n=6) * 20  # 160 paths
    pulled = []

    def source():
        for path in paths:
            pulled.append(path)
            yield path

    stream = load_images(source(), workers=3)
    next(stream)
    assert len(pulled) <= 2 * images.BATCH + 1  # never the whole input
    assert len(list(stream)) == len(paths) - 1 and len(pulled) == len(paths)


def test_decoding_leaves_pillow_limit_and_warning_filters_alone(tmp_path, monkeypatch):
    paths = mixed_folder(tmp_path, n=8)
    limit, filters = Image.MAX_IMAGE_PIXELS, list(warnings.filters)
    monkeypatch.setattr(images, "MAX_PIXELS", 5_000)  # some of them are now over the limit
    results = [loaded for _, loaded in load_images(paths, workers=4)]
    assert any("safety limit" in str(r) for r in results)
    assert Image.MAX_IMAGE_PIXELS == limit and warnings.filters == filters


def test_decode_workers_from_the_environment(monkeypatch):
    monkeypatch.delenv(images.WORKERS_ENV, raising=False)
    assert decode_workers() >= 1
    monkeypatch.setenv(images.WORKERS_ENV, "3")
    assert decode_workers() == 3
    for bad in ("0", "-2", "two"):
        monkeypatch.setenv(images.WORKERS_ENV, bad)
        with pytest.raises(AttribError, match=f"ATTRIB_WORKERS='{bad}' must be a positive integer"):
            decode_workers()


@pytest.mark.parametrize("quality", [35, 73, 95])
def test_the_compression_a_jpeg_shows_names_its_quality_from_its_tables(quality):
    buffer = io.BytesIO()
    Image.fromarray(np.random.default_rng(quality).integers(0, 255, (40, 48, 3), dtype=np.uint8)).save(
        buffer, "JPEG", quality=quality)
    assert lossy_coding(buffer.getvalue()) == f"JPEG quality ~{quality}"  # libjpeg's tables: exact
