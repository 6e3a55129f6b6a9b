"""attrib.testing.check_extractor: passes a good extractor, names the failure of bad ones."""

from __future__ import annotations

import socket

import numpy as np
import pytest

from attrib.testing import CheckReport, check_extractor, sample_images


class Good:
    """Mean colour and a coarse 2x2 layout: deterministic, per-image."""

    name = "fake-good"
    version = "1"
    dim = 15

    def __init__(self, scale: str = "1"):
        self.scale = float(scale)

    def embed_batch(self, images):
        out = []
        for im in images:
            x = im.astype(np.float32) / 255.0
            h, w = x.shape[0] // 2 or 1, x.shape[1] // 2 or 1
            quads = [x[:h, :w], x[:h, w:], x[h:, :w], x[h:, w:]]
            feats = [x.reshape(-1, 3).mean(0)] + [q.reshape(-1, 3).mean(0) for q in quads]
            out.append(np.concatenate(feats) * self.scale + 0.01)
        return np.stack(out).astype(np.float32)


class WrongShape(Good):
    name = "fake-wrong-shape"

    def embed_batch(self, images):
        return super().embed_batch(images)[:, :-1]


class ReturnsNaN(Good):
    name = "fake-nan"

    def embed_batch(self, images):
        out = super().embed_batch(images)
        out[:, 3] = np.nan
        return out


class Random(Good):
    name = "fake-random"

    def embed_batch(self, images):
        return np.random.default_rng().normal(size=(len(images), self.dim)).astype(np.float32)


class OpensSocket(Good):
    name = "fake-socket"

    def embed_batch(self, images):
        try:  # a plugin that "phones home" and swallows the error is still caught
            socket.create_connection(("127.0.0.1", 9), timeout=0.1)
        except OSError:
            pass
        return super().embed_batch(images)


class DownloadsOnStart(Good):
    name = "fake-download"

    def __init__(self, **options):
        super().__init__(**options)
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            s.connect(("127.0.0.1", 9))
        finally:
            s.close()


class BatchDependent(Good):
    name = "fake-batchnorm"

    def embed_batch(self, images):
        out = super().embed_batch(images)
        return out - out.mean(0) + 0.5 if len(out) > 1 else out


class Constant(Good):
    name = "fake-constant"

    def embed_batch(self, images):
        return np.ones((len(images), self.dim), np.float32)


class NoName:
    version = "1"
    dim = 3

    def embed_batch(self, images):
        return np.ones((len(images), 3), np.float32)


class DimMismatch(Good):
    name = "fake-dim"  # class says 15, the instance says 14

    def __init__(self, **options):
        super().__init__(**options)
        self.dim = 14


class Crashes(Good):
    name = "fake-crash"

    def embed_batch(self, images):
        if any(min(im.shape[:2]) < 80 for im in images):
            raise RuntimeError("input too small for the network")
        return super().embed_batch(images)


class Mutates(Good):
    name = "fake-mutates"

    def embed_batch(self, images):
        for im in images:
            im[0, 0] = 0
        return super().embed_batch(images)


def test_good_extractor_passes_with_report():
    report = check_extractor(Good, options={"scale": "2"})
    assert isinstance(report, CheckReport)
    assert (report.name, report.version, report.dim) == ("fake-good", "1", 15)
    text = str(report)
    for check in ("class attributes", "output", "determinism", "batch vs single", "odd images", "no network"):
        assert check in text
    assert "images/s on 256x256" in text and report.images_per_second > 0


def test_instance_accepted_and_speed_optional():
    report = check_extractor(Good(), speed=False)
    assert report.images_per_second is None
    with pytest.raises(TypeError):
        check_extractor(Good(), options={"scale": "2"})


@pytest.mark.parametrize(
    "bad, check, words",
    [
        (WrongShape, "output", "shape (7, 14)"),
        (ReturnsNaN, "output", "NaN"),
        (Random, "determinism", "differs"),
        (OpensSocket, "no network", "create_connection"),
        (DownloadsOnStart, "no network", "while starting"),
        (BatchDependent, "batch vs single", "alone than in a batch"),
        (Constant, "distinguishes images", "same embedding"),
        (DimMismatch, "class attributes", "differs from instance dim"),
        (Crashes, "output", "RuntimeError: input too small"),
        (Mutates, "output", "in place"),
    ],
)
def test_bad_extractors_fail_with_named_check(bad, check, words):
    with pytest.raises(AssertionError) as info:
        check_extractor(bad, speed=False)
    message = str(info.value)
    assert f"extractor {bad.name!r}" in message
    assert f"failed check '{check}'" in message
    assert words in message


def test_class_attributes_checked_without_instantiation():
    with pytest.raises(AssertionError, match="NoName.name must be a non-empty str"):
        check_extractor(NoName)


def test_network_patch_is_restored():
    before = (socket.socket.connect, socket.socket.connect_ex, socket.create_connection)
    with pytest.raises(AssertionError):
        check_extractor(OpensSocket, speed=False)
    assert (socket.socket.connect, socket.socket.connect_ex, socket.create_connection) == before


def test_sample_images_cover_the_awkward_cases():
    images = sample_images()
    assert all(im.dtype == np.uint8 and im.ndim == 3 and im.shape[2] == 3 for im in images.values())
    gray = images["grayscale as RGB"]
    assert (gray[..., 0] == gray[..., 1]).all() and (gray[..., 1] == gray[..., 2]).all()
    assert images["large 2048x1536"].shape == (1536, 2048, 3)
    assert images["odd 67x131"].shape == (131, 67, 3)
    assert images["tiny 64x64"].shape == (64, 64, 3)


def test_factory_function_with_class_attributes():
    def factory(**options):
        return Good(**options)

    factory.name, factory.version, factory.dim = "fake-factory", "1", 15
    report = check_extractor(factory, options={"scale": "3"}, speed=False)
    assert report.name == "fake-good" and report.dim == 15  # the instance's own name wins, as in the host


def test_the_builtin_residual_extractor_passes_the_kit_like_any_plugin():
    from attrib.extractors.residual import ResidualExtractor

    report = check_extractor(ResidualExtractor, speed=False)
    assert report.name == "residual" and report.dim == 65
    assert report.plugin == "attrib.extractors.residual"
    assert [name for name, _ in report.checks][:2] == ["class attributes", "construction"]
