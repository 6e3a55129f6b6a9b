"""A gallery of two extractors never goes half-fused: enroll embeds with every extractor the gallery holds (or
refuses, naming the fix), and a fused answer over samples one extractor lacks is refused."""

from __future__ import annotations

import json

import pytest

from attrib.errors import GalleryError
from attrib.extractors.contract import BoundExtractor
from attrib.gallery import Gallery
from attrib.host.manager import ExtractorSpec

from cli_helpers import CohortColorPct, attrib, json_lines, register_both
from conftest import make_images
from gallery_helpers import CohortColorMean


@pytest.fixture
def fused(tmp_path, plugin):
    """red, green, blue enrolled with colormean, then colorpct added with `gallery reembed`."""
    register_both(plugin)
    location = tmp_path / "g"
    for seed, name in enumerate(("red", "green", "blue")):
        attrib("--gallery", location, "enroll", "-e", "colormean", "-g", name,
               *make_images(tmp_path / name, name, 5, seed=seed))
    attrib("--gallery", location, "gallery", "reembed", "-e", "colorpct")
    return location


def vectors_per_extractor(location) -> dict[str, int]:
    from attrib.storage.opening import open_store

    store = open_store(location)
    try:
        return {key: store.vector_count(extractor_id) for extractor_id, key in store.extractors()}
    finally:
        store.close()


@pytest.mark.parametrize("extractor_args", [["-e", "colormean"], []])
def test_enroll_embeds_with_every_extractor_the_gallery_holds(fused, tmp_path, extractor_args):
    result = attrib("--gallery", fused, "enroll", *extractor_args, "-g", "gray",
                    *make_images(tmp_path / "gray", "gray", 6, seed=4))
    assert "gray: added 6" in result.output and "embedded with colormean@1, colorpct@1" in result.output
    assert vectors_per_extractor(fused) == {"colormean@1": 21, "colorpct@1": 21}
    check = json.loads(attrib("--gallery", fused, "gallery", "check", "--json").output)
    assert check["status"] == "consistent", check
    # the fused answer names gray with gray's own threshold, not one shared by every generator
    query = make_images(tmp_path / "q", "gray", 1, seed=9)[0]
    row = json_lines(attrib("--gallery", fused, "identify", "--json", "-e", "colormean+colorpct", query).output)[0]
    assert row["decision"] == "gray"
    assert len({round(c["threshold"], 6) for c in row["candidates"]}) > 1


def test_enroll_json_lists_the_extractors(fused, tmp_path):
    result = attrib("--gallery", fused, "enroll", "--json", "-g", "gray",
                    *make_images(tmp_path / "gray", "gray", 3, seed=4))
    summary = json.loads(result.output)
    assert summary["extractors"] == ["colormean@1", "colorpct@1"] and len(summary["added"]) == 3
    entries = json_lines(attrib("--gallery", fused, "gallery", "audit", "--action", "enroll", "--json").output)
    detail = next(entry["detail"] for entry in entries if entry["detail"]["generator"] == "gray")
    assert detail["generator"] == "gray" and detail["extractors"] == ["colorpct@1"] and "versions" not in detail


def test_a_new_gallery_can_be_enrolled_fused_from_the_start(tmp_path, plugin):
    register_both(plugin)
    location = tmp_path / "g"
    for seed, name in enumerate(("red", "blue")):
        attrib("--gallery", location, "enroll", "-e", "colormean+colorpct", "-g", name,
               *make_images(tmp_path / name, name, 4, seed=seed))
    assert vectors_per_extractor(location) == {"colormean@1": 8, "colorpct@1": 8}


def test_an_extractor_new_to_a_gallery_with_samples_is_refused_naming_reembed(fused, tmp_path, plugin):
    class ChanMean(CohortColorMean):
        name = "chanmean"

    plugin(ChanMean, name="test-chanmean")
    result = attrib("--gallery", fused, "enroll", "-e", "chanmean", "-g", "gray",
                    *make_images(tmp_path / "gray", "gray", 3, seed=4), expect=1)
    assert "attrib gallery reembed -e chanmean" in result.output and len(result.output.strip().splitlines()) == 1
    assert vectors_per_extractor(fused) == {"colormean@1": 15, "colorpct@1": 15}


def test_a_held_extractor_that_cannot_be_set_up_again_is_refused_naming_the_fix(tmp_path, plugin):
    class Weighted(CohortColorPct):
        """An extractor whose weights file is an option but not part of its identity."""

        name, identity_options = "weighted", ()

        def __init__(self, **options):
            if "weights" not in options:
                raise TypeError("needs -o weights=FILE")

    register_both(plugin)
    plugin(Weighted, name="test-weighted")
    location = tmp_path / "g"
    attrib("--gallery", location, "enroll", "-e", "colormean", "-g", "red", *make_images(tmp_path / "r", "red", 4))
    attrib("--gallery", location, "gallery", "reembed", "-e", "weighted", "-o", "weights=w.bin")
    result = attrib("--gallery", location, "enroll", "-e", "colormean", "-g", "blue",
                    *make_images(tmp_path / "b", "blue", 4, seed=1), expect=1)
    assert "weighted cannot be set up" in result.output
    assert "-e colormean+weighted -o weighted.KEY=VALUE" in result.output
    attrib("--gallery", location, "enroll", "-e", "colormean+weighted", "-o", "weighted.weights=w.bin", "-g", "blue",
           *make_images(tmp_path / "b", "blue", 4, seed=1))
    assert vectors_per_extractor(location) == {"colormean@1": 8, "weighted@1": 8}


def test_a_fused_answer_over_missing_vectors_is_refused(tmp_path):
    """A gallery half-fused by an older attrib: 'green' enrolled with colormean only."""
    mean, pct = (BoundExtractor(ExtractorSpec(cls, "test")) for cls in (CohortColorMean, CohortColorPct))
    with Gallery(tmp_path / "g") as gallery:
        gallery.enroll("red", make_images(tmp_path / "red", "red", 5), [mean, pct])
        from attrib.storage import bulk

        records = [image.record() for _, image in _loaded(make_images(tmp_path / "green", "green", 4, seed=1))]
        vectors = mean.embed([image.require_pixels() for _, image in _loaded(r.path for r in records)])
        bulk.store_chunk(gallery._store, "green", records, vectors, mean)
        query = make_images(tmp_path / "q", "red", 1, seed=9)
        with pytest.raises(GalleryError, match=r"cannot fuse .*4 of the 9 samples have no colorpct@1 vector.*"
                                               r"attrib gallery reembed -e colorpct"):
            list(gallery.identify(query, [mean, pct]))
        assert [r.decision for r in gallery.identify(query, mean)] == ["red"]  # one extractor still answers
        gallery.reembed(pct)
        assert [r.decision for r in gallery.identify(query, [mean, pct])] == ["red"]


def _loaded(paths):
    from attrib.images import load_images

    return list(load_images(list(paths)))
