"""Delivery versions: a gallery enrolled from original files also keeps every sample embedded after each
lossy coding of a ladder, and a query is scored against the version nearest its measured delivery."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from attrib.cli import cli as main
from attrib.delivery import DEFAULT_LADDER, ORIGINAL, Delivery, choose_rung, delivered, parse_ladder, rung_of
from attrib.errors import BadOption
from attrib.gallery import Gallery
from attrib.synthetic.conditions import parse_condition

from conftest import ColorMean, make_images

SCORE_TOLERANCE = 1e-5  # one embedding scored by two galleries that hold the same vectors


class DeliveredColorMean(ColorMean):
    """ColorMean that sees coarse JPEG blocking (mean 8x8 block-edge step), with a small cohort of its own,
    also shipped per delivery (as the residual extractor ships its cohort)."""

    name = "colorblock"

    def embed_batch(self, images):
        rows = []
        for im in images:
            luma = im.astype(np.float32).mean(axis=2)
            edges = np.abs(np.diff(luma, axis=1))
            rows.append([edges[:, 7::8].mean() - edges.mean()])
        return np.concatenate([super().embed_batch(images), np.array(rows, np.float32) * 10], axis=1)

    dim = 7

    @staticmethod
    def _cohort_images():
        rng = np.random.default_rng(7)
        return [np.clip(rng.normal(rng.uniform(40, 220, 3), 25, (48, 48, 3)), 0, 255).astype(np.uint8)
                for _ in range(40)]

    def cohort_vectors(self, version):
        return self.embed_batch(self._cohort_images())

    def delivered_cohort_vectors(self, version, rung):
        condition = parse_condition(rung)
        return self.embed_batch([condition.apply(im) for im in self._cohort_images()])


@pytest.fixture
def extractor(plugin):
    plugin(DeliveredColorMean, name="test-colorblock")
    from attrib.extractors.resolve import load_extractor

    return load_extractor("colorblock", (), set())


def write(pixels: np.ndarray, path: Path, fmt: str, quality: int | None = None) -> Path:
    Image.fromarray(pixels).save(path, format=fmt, **({"quality": quality} if quality else {}))
    return path


def pixels_of(path: Path) -> np.ndarray:
    with Image.open(path) as image:
        return np.asarray(image.convert("RGB"))


# -- the ladder and the choice of version --------------------------------------


def test_a_ladder_is_canonical_and_a_bad_rung_is_named():
    assert parse_ladder("webp:80, jpeg:60,jpeg:90,jpeg:60") == ("jpeg:90", "jpeg:60", "webp:80")
    assert parse_ladder("none") == parse_ladder("") == ()
    assert parse_ladder("default") == DEFAULT_LADDER
    for bad in ("jpeg:800", "png", "resize:0.5", "jpeg:80+png", "gif:3"):
        with pytest.raises(BadOption, match=bad.replace("+", r"\+")):
            parse_ladder(f"jpeg:90,{bad}")
    assert rung_of("residual@3|jpeg:80") == "jpeg:80" and rung_of("residual@3") == ORIGINAL


@pytest.mark.parametrize("delivery, rung", [
    (Delivery("PNG", "lossless", 64, 64), ORIGINAL),
    (Delivery("JPEG", "jpeg", 64, 64, jpeg_quality=94), "jpeg:90"),
    (Delivery("JPEG", "jpeg", 64, 64, jpeg_quality=97), ORIGINAL),
    (Delivery("JPEG", "jpeg", 64, 64, jpeg_quality=83), "jpeg:80"),
    (Delivery("JPEG", "jpeg", 64, 64, jpeg_quality=57), "jpeg:60"),
    (Delivery("JPEG", "jpeg", 64, 64, jpeg_quality=40), ORIGINAL),  # farther than NEAR from every JPEG rung
    (Delivery("PNG", "lossless", 64, 64, jpeg_before=True, estimated_quality=99), ORIGINAL),
    (Delivery("PNG", "lossless", 64, 64, jpeg_before=True, estimated_quality=62), "jpeg:60"),
    (Delivery("WEBP", "lossy-webp", 64, 64, webp_quality=70), "webp:80"),
    (Delivery("WEBP", "lossless", 64, 64), ORIGINAL),
])
def test_a_query_is_scored_against_the_nearest_version(delivery, rung):
    assert choose_rung(delivery, ("jpeg:90", "jpeg:80", "jpeg:60", "webp:80")) == rung
    assert choose_rung(delivery, ()) == ORIGINAL


def test_a_delivered_extractor_embeds_after_the_round_trip(extractor):
    image = np.random.default_rng(0).integers(0, 255, (64, 64, 3), dtype=np.uint8)
    version = delivered(extractor, "jpeg:70")
    assert version.identity.key == f"{extractor.identity.key}|jpeg:70"
    assert version.identity.base_key == extractor.identity.key
    expected = extractor.embed([parse_condition("jpeg:70").apply(image)])
    np.testing.assert_allclose(version.embed([image]), expected, atol=1e-6)


# -- enrolling versions --------------------------------------------------------


def enroll_three(gallery: Gallery, root: Path, extractor, versions=None, n=6):
    for cast in ("red", "green", "blue"):
        gallery.enroll(cast, make_images(root / cast, cast, n, seed=1), extractor, versions=versions)


def test_enroll_stores_each_version_with_its_own_cohort_and_calibration(tmp_path, extractor, store_of):
    with Gallery(tmp_path / "g") as gallery:
        enroll_three(gallery, tmp_path, extractor, versions="jpeg:80,webp:80")
        assert gallery.ladder(extractor) == ("jpeg:80", "webp:80")
    store = store_of(tmp_path / "g")
    key = extractor.identity.key
    held = store.delivery_versions(key)
    assert {rung: count for rung, (_, count) in held.items()} == {"jpeg:80": 18, "webp:80": 18}
    for rung, (version_key, _) in held.items():
        version_id = store.extractor_id(version_key)
        assert store.cohort(version_id, "1") is not None
        assert len(store.calibration(version_id).thresholds) == 4  # three generators and the global one
    enrolls = [e["detail"] for e in store.audit_log(None, "enroll")]
    assert all(detail["versions"] == ["jpeg:80", "webp:80"] for detail in enrolls)


def test_a_new_gallery_takes_the_default_ladder_and_one_without_versions_keeps_none(
        tmp_path, extractor, delivery_ladder, monkeypatch):
    with Gallery(tmp_path / "new") as gallery:
        enroll_three(gallery, tmp_path, extractor, n=3)
        assert gallery.ladder(extractor) == DEFAULT_LADDER
    with Gallery(tmp_path / "plain") as gallery:
        gallery.enroll("red", make_images(tmp_path / "r", "red", 3), extractor, versions="none")
        report = gallery.enroll("green", make_images(tmp_path / "gr", "green", 3), extractor)
        assert report.versions == [] and gallery.ladder(extractor) == ()
    monkeypatch.setenv("ATTRIB_DELIVERY_LADDER", "jpeg:75")
    with Gallery(tmp_path / "env") as gallery:
        assert gallery.enroll("red", make_images(tmp_path / "r2", "red", 3), extractor).versions == ["jpeg:75"]


def test_identify_scores_each_query_against_its_version(tmp_path, extractor):
    """A JPEG query is scored against the version at its quality: its scores are those of a gallery enrolled
    from the same images JPEG'd at that quality (the same vectors), and the answer says so."""
    originals = tmp_path / "originals"
    with Gallery(tmp_path / "versioned") as gallery:
        enroll_three(gallery, originals, extractor, versions="jpeg:90,jpeg:60")
    coded = tmp_path / "coded"
    with Gallery(tmp_path / "reference") as reference:
        for cast in ("red", "green", "blue"):
            (coded / cast).mkdir(parents=True)
            files = [write(parse_condition("jpeg:60").apply(pixels_of(p)), coded / cast / p.name, "PNG")
                     for p in sorted((originals / cast).iterdir())]
            reference.enroll(cast, files, extractor, versions="none")
    query = pixels_of(make_images(tmp_path / "q", "green", 1, seed=9)[0])
    files = [write(query, tmp_path / "q.png", "PNG"), write(query, tmp_path / "q88.jpg", "JPEG", 88),
             write(query, tmp_path / "q55.jpg", "JPEG", 55)]
    with Gallery(tmp_path / "versioned", read_only=True) as gallery:
        results = list(gallery.identify(files, extractor, top_k=3))
    assert [r.delivery["version"] for r in results] == [ORIGINAL, "jpeg:90", "jpeg:60"]
    assert results[1].delivery["measured"]["jpeg_quality"] == 88
    assert results[2].delivery["describe"] == "JPEG q≈55"
    assert all(r.delivery["versions"] == [ORIGINAL, "jpeg:90", "jpeg:60"] for r in results)
    assert not any("recompressed" in flag for r in results for flag in r.flags)
    with Gallery(tmp_path / "reference", read_only=True) as reference:
        (expected,) = reference.identify([files[2]], extractor, top_k=3)
    assert expected.delivery["version"] == ORIGINAL  # that gallery has no versions
    assert [c.generator for c in results[2].candidates] == [c.generator for c in expected.candidates]
    for got, want in zip(results[2].candidates, expected.candidates):
        assert abs(got.score - want.score) <= SCORE_TOLERANCE


def test_verify_uses_the_version_too(tmp_path, extractor):
    with Gallery(tmp_path / "g") as gallery:
        enroll_three(gallery, tmp_path, extractor, versions="jpeg:70")
        query = write(pixels_of(make_images(tmp_path / "q", "red", 1, seed=5)[0]), tmp_path / "q.jpg", "JPEG", 72)
        (result,) = gallery.verify("red", [query], extractor)
    assert result.delivery["version"] == "jpeg:70" and result.match


def test_reembed_adds_versions_to_a_gallery_enrolled_without(tmp_path, extractor):
    with Gallery(tmp_path / "g") as gallery:
        enroll_three(gallery, tmp_path, extractor, versions="none")
        query = write(pixels_of(make_images(tmp_path / "q", "blue", 1, seed=5)[0]), tmp_path / "q.jpg", "JPEG", 80)
        (before,) = gallery.identify([query], extractor)
        assert before.delivery["version"] == ORIGINAL and before.delivery["versions"] == [ORIGINAL]
        assert any("reembed --versions" in flag for flag in before.flags)
        report = gallery.reembed(extractor, versions="jpeg:80")
        assert report.versions == {"jpeg:80": 18} and report.complete
        assert gallery.reembed(extractor).versions == {"jpeg:80": 0}  # nothing left to embed
        (after,) = gallery.identify([query], extractor)
    assert after.delivery["version"] == "jpeg:80" and after.decision == "blue"


def test_a_version_lacking_samples_is_not_used(tmp_path, extractor):
    """Vectors stored without pixels (enroll_embedded) leave the versions incomplete: queries go to the
    originals, and enroll says which versions lack them and what adds them."""
    notes = []
    with Gallery(tmp_path / "g", notify=notes.append) as gallery:
        enroll_three(gallery, tmp_path, extractor, versions="jpeg:80")
        paths = make_images(tmp_path / "gray", "gray", 4)
        from attrib.images import load_image

        images = [load_image(p) for p in paths]
        gallery.enroll_embedded("gray", [i.record() for i in images], extractor.embed([i.pixels for i in images]),
                                extractor)
        assert any("jpeg:80" in n and "reembed" in n for n in notes)
        query = write(pixels_of(paths[0]), tmp_path / "q.jpg", "JPEG", 80)
        (result,) = gallery.identify([query], extractor)
        assert result.delivery["version"] == ORIGINAL and result.delivery["versions"] == [ORIGINAL]
        gallery.reembed(extractor)
        (result,) = gallery.identify([query], extractor)
    assert result.delivery["version"] == "jpeg:80"


def test_the_cli_names_versions_and_deliveries(tmp_path, extractor):
    runner = CliRunner()
    gallery = str(tmp_path / "g")
    for cast in ("red", "green"):
        make_images(tmp_path / cast, cast, 5)
        done = runner.invoke(main, ["--gallery", gallery, "enroll", "-g", cast, "-e", "colorblock", "--versions",
                                    "jpeg:75", "--json", str(tmp_path / cast)])
        assert done.exit_code == 0, done.output
        assert json.loads(done.output.strip().splitlines()[-1])["versions"] == ["jpeg:75"]
    query = write(pixels_of(make_images(tmp_path / "q", "red", 1, seed=3)[0]), tmp_path / "q.jpg", "JPEG", 77)
    done = runner.invoke(main, ["--gallery", gallery, "identify", "-e", "colorblock", "--json", str(query)])
    answer = json.loads(done.output.strip().splitlines()[-1])
    assert answer["schema"] == 4 and answer["delivery"]["version"] == "jpeg:75"
    done = runner.invoke(main, ["--gallery", gallery, "identify", "-e", "colorblock", str(query)])
    assert "[JPEG q≈77 -> jpeg:75 version]" in done.output
    bad = runner.invoke(main, ["--gallery", gallery, "enroll", "-g", "red", "-e", "colorblock", "--versions",
                               "jpeg:75,jpeg:900", str(tmp_path / "red")])
    assert bad.exit_code != 0 and "jpeg:900" in bad.output and "Traceback" not in bad.output


def test_versions_bring_jpeg_queries_back_on_the_zoo(tmp_path, delivery_ladder):
    """The measured effect, small: residual on four zoo generators, JPEG-80 queries. Against originals only
    they are named right less often than against the gallery with its default versions."""
    from attrib.extractors.resolve import load_extractor
    from attrib.synthetic.zoo import write_zoo

    residual = load_extractor("residual", (), set())
    names = ["tconv-1", "bilinear-1", "nearest-1", "upconv-1"]
    zoo = write_zoo(tmp_path / "zoo", names, n_per=16, size=128)
    queries, truth = [], []
    for name in names:
        for path in zoo[name][10:]:
            out = tmp_path / "q" / f"{name}-{path.stem}.jpg"
            out.parent.mkdir(exist_ok=True)
            queries.append(write(pixels_of(path), out, "JPEG", 80))
            truth.append(name)
    right, notes = {}, []
    for versions in ("none", None):
        with Gallery(tmp_path / f"g-{versions}", notify=notes.append) as gallery:
            for name in names:
                gallery.enroll(name, zoo[name][:10], residual, versions=versions)
            answers = list(gallery.identify(queries, residual, evidence=False))
        right[versions] = np.mean([a.candidates[0].generator == t for a, t in zip(answers, truth)])
        if versions is None:
            assert {a.delivery["version"] for a in answers} == {"jpeg:80"}
    assert right[None] >= right["none"] + 0.2, right
    assert not any("embedding the impostor cohort" in note for note in notes)  # shipped for every default rung


def test_a_schema_6_gallery_gains_the_delivery_column_and_then_versions(gallery_location, tmp_path, extractor,
                                                                        store_of):
    from sqlalchemy import inspect as inspect_database
    from sqlalchemy import text

    from attrib.storage.schema import HEAD_REVISION, SCHEMA_VERSION

    with Gallery(gallery_location) as gallery:
        gallery.enroll("red", make_images(tmp_path / "red", "red", 4), extractor, versions="none")
    store = store_of(gallery_location)
    with store.engine.begin() as connection:  # back to what the schema 6 attrib wrote
        connection.execute(text("ALTER TABLE extractors DROP COLUMN delivery"))
        connection.execute(text("UPDATE meta SET value = '6' WHERE key = 'schema_version'"))
        connection.execute(text("UPDATE alembic_version SET version_num = '0006'"))
    with Gallery(gallery_location) as gallery:
        assert "delivery" in {c["name"] for c in inspect_database(store.engine).get_columns("extractors")}
        with store.engine.begin() as connection:
            assert connection.execute(text("SELECT version_num FROM alembic_version")).all() == [(HEAD_REVISION,)]
            assert connection.execute(text("SELECT value FROM meta WHERE key = 'schema_version'")).all() == [
                (str(SCHEMA_VERSION),)]
        assert gallery.ladder(extractor) == ()  # enrolled without versions: it keeps none
        assert gallery.reembed(extractor, versions="jpeg:85").versions == {"jpeg:85": 4}
        gallery.enroll("blue", make_images(tmp_path / "blue", "blue", 4), extractor)
        assert gallery.check().consistent
    assert {rung: count for rung, (_, count) in store.delivery_versions(extractor.identity.key).items()} == {
        "jpeg:85": 8}


@pytest.mark.parametrize("own, delivery, alike", [
    ("jpeg:75", Delivery("PNG", "lossless", 64, 64, jpeg_before=True, estimated_quality=75), True),
    ("jpeg:75", Delivery("JPEG", "jpeg", 64, 64, jpeg_quality=77), True),
    ("jpeg:75", Delivery("JPEG", "jpeg", 64, 64, jpeg_quality=80), False),
    ("lossless", Delivery("JPEG", "jpeg", 64, 64, jpeg_quality=75), False),
    ("webp:80", Delivery("WEBP", "lossy-webp", 64, 64, webp_quality=80), True),
    ("webp:80", Delivery("JPEG", "jpeg", 64, 64, jpeg_quality=80), False),
    ("jpeg", Delivery("JPEG", "jpeg", 64, 64, jpeg_quality=80), False),
])
def test_a_generator_whose_files_were_coded_as_the_query_is_alike(own, delivery, alike):
    from attrib.delivery import coded_alike

    assert coded_alike(own, delivery) is alike
    assert coded_alike(own, delivery, sides=[64, 1024]) is alike
    assert coded_alike(own, delivery, sides=[128]) is False  # the query was resized, then coded again


def test_a_generator_publishing_jpegs_is_scored_against_its_originals(tmp_path, extractor):
    """Files a generator published as JPEG at 75 are enrolled as they are; a query coded the same way is
    scored against those originals for that generator, and against the jpeg:75 version for the others."""
    with Gallery(tmp_path / "g") as gallery:
        gallery.enroll("red", make_images(tmp_path / "red", "red", 6, fmt="jpg"), extractor, versions="jpeg:75")
        for cast in ("green", "blue"):
            gallery.enroll(cast, make_images(tmp_path / cast, cast, 6), extractor, versions="jpeg:75")
        jpeg_quality = Image.open(next((tmp_path / "red").iterdir())).quantization  # Pillow's default: 75
        assert jpeg_quality
        query = write(pixels_of(make_images(tmp_path / "q", "red", 1, seed=4)[0]), tmp_path / "q.jpg", "JPEG", 75)
        other = write(pixels_of(make_images(tmp_path / "q", "green", 1, seed=4)[0]), tmp_path / "o.jpg", "JPEG", 79)
        first, second = gallery.identify([query, other], extractor, top_k=3)
    assert first.delivery["version"] == "jpeg:75" and first.delivery["originals_for"] == ["red"]
    assert first.decision == "red"
    assert second.delivery["version"] == "jpeg:75" and "originals_for" not in second.delivery


class OtherColorBlock(DeliveredColorMean):
    name = "colorblock2"


def test_a_second_extractor_takes_the_versions_of_the_first_and_fuses_there(tmp_path, plugin, extractor):
    plugin(OtherColorBlock, name="test-colorblock2")
    from attrib.extractors.resolve import load_extractor

    other = load_extractor("colorblock2", (), set())
    with Gallery(tmp_path / "g") as gallery:
        enroll_three(gallery, tmp_path, extractor, versions="jpeg:85,jpeg:65")
        assert gallery.ladder(other) == ("jpeg:85", "jpeg:65")
        assert gallery.reembed(other).versions == {"jpeg:85": 18, "jpeg:65": 18}
        query = write(pixels_of(make_images(tmp_path / "q", "blue", 1, seed=6)[0]), tmp_path / "q.jpg", "JPEG", 66)
        (fused,) = gallery.identify([query], [extractor, other])
    assert fused.delivery["version"] == "jpeg:65" and fused.require_nearest().generator == "blue"
    assert set(fused.candidates[0].per_extractor) == {extractor.identity.key, other.identity.key}


def test_the_cli_adds_versions_to_an_older_gallery_and_refuses_a_bad_ladder(tmp_path, extractor):
    runner = CliRunner()
    gallery = str(tmp_path / "g")
    make_images(tmp_path / "red", "red", 4)
    done = runner.invoke(main, ["--gallery", gallery, "enroll", "-g", "red", "-e", "colorblock", "--versions", "none",
                                "--json", str(tmp_path / "red")])
    assert done.exit_code == 0 and json.loads(done.output.strip().splitlines()[-1])["versions"] == []
    done = runner.invoke(main, ["--gallery", gallery, "gallery", "reembed", "-e", "colorblock", "--versions",
                                "jpeg:70", "--json"])
    assert done.exit_code == 0, done.output
    assert json.loads(done.output.strip().splitlines()[-1])["versions"] == {"jpeg:70": 4}
    for command in (["gallery", "reembed", "-e", "colorblock"], ["evaluate", str(tmp_path), "--known", "red"]):
        bad = runner.invoke(main, ["--gallery", gallery, *command, "--versions", "webp:300"])
        assert bad.exit_code != 0 and "webp:300" in bad.output and "Traceback" not in bad.output
    fresh = tmp_path / "never-made"
    bad = runner.invoke(main, ["--gallery", str(fresh), "enroll", "-g", "red", "--versions", "jpeg:0",
                               str(tmp_path / "red")])
    assert bad.exit_code == 2 and "jpeg:0" in bad.output and not fresh.exists()  # refused before any write


def test_reembed_says_which_samples_a_new_version_could_not_read(tmp_path, extractor):
    """The originals are complete, but a file moved since: the version added by reembed lacks that sample,
    so the report names it and is not complete (the version is then not used by identify)."""
    with Gallery(tmp_path / "g") as gallery:
        enroll_three(gallery, tmp_path, extractor, versions="none")
        moved = next((tmp_path / "red").iterdir())
        moved.rename(tmp_path / "elsewhere.png")
        report = gallery.reembed(extractor, versions="jpeg:80")
    assert report.versions == {"jpeg:80": 17} and not report.complete
    assert any(p.startswith("jpeg:80 version:") and "'red'" in p for p in report.problems)


def test_identify_each_answers_every_request_exactly_as_identify_alone(tmp_path, extractor):
    """Several requests set up once (as `attrib serve` answers a batch) get, to the last digit, the answers each
    would get alone, PNG and JPEG queries (scored at different versions) mixed in one request."""
    with Gallery(tmp_path / "g") as gallery:
        enroll_three(gallery, tmp_path, extractor, versions="jpeg:80,webp:80")
        requests = []
        for k, cast in enumerate(("red", "green", "blue", "gray")):
            pixels = pixels_of(make_images(tmp_path / "q" / cast, cast, 1, seed=20 + k)[0])
            requests.append([write(pixels, tmp_path / f"{cast}.png", "PNG"),
                             write(pixels, tmp_path / f"{cast}.jpg", "JPEG", 80)][: 1 + k % 2])
        together = gallery.identify_each(requests, extractor)
        alone = [list(gallery.identify(paths, extractor)) for paths in requests]
    assert [len(answers) for answers in together] == [1, 2, 1, 2]
    assert [[r.to_json() for r in answers] for answers in together] == [[r.to_json() for r in answers]
                                                                          for answers in alone]
    assert {r.delivery["version"] for answers in together for r in answers} == {ORIGINAL, "jpeg:80"}
