"""attrib discover: tight groups of unknown images become candidates, one-offs and loose or mixed groups do not,
camera photographs are labelled, a candidate is enrolled from the file that listed it, and the evaluation
reports purity and recovery."""

from __future__ import annotations

import json

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from attrib.cli import cli
from attrib.discovery.candidates import GENERATOR, PHOTOGRAPHS
from attrib.discovery.clustering import NEARER_ENROLLED, group_images, mixed_halves, tightness_bar
from attrib.discovery.photos import camera_of, check_photos, references_threshold

from conftest import make_images
from gallery_helpers import bound

DIM = 32


def unit(rows: np.ndarray) -> np.ndarray:
    return (rows / np.linalg.norm(rows, axis=1, keepdims=True)).astype(np.float32)


def around(centre: np.ndarray, n: int, spread: float, seed: int) -> np.ndarray:
    """``n`` unit vectors scattered around ``centre`` (a unit vector): cosine about 1 - spread**2 * DIM / 2."""
    rng = np.random.default_rng(seed)
    return unit(centre[None, :] + rng.normal(0, spread, (n, len(centre))))


def directions(n: int, seed: int = 0) -> np.ndarray:
    return unit(np.random.default_rng(seed).normal(size=(n, DIM)))


def test_two_tight_groups_are_found_and_one_offs_are_not_candidates():
    a, b, *lone = directions(8)
    vectors = np.vstack([around(a, 10, 0.03, 1), around(b, 8, 0.03, 2), np.stack(lone)])
    grouping = group_images(vectors, reference=0.9, min_cluster_size=5)
    found = sorted(sorted(g.members) for g in grouping.groups)
    assert found == [list(range(10)), list(range(10, 18))]
    assert all(g.tightness > 0 for g in grouping.groups)
    in_candidates = {i for g in grouping.groups for i in g.members}
    assert not in_candidates & set(range(18, 24))  # the six one-offs


def test_a_group_smaller_than_min_cluster_size_is_no_candidate():
    a, b, known = directions(3, seed=3)
    vectors = np.vstack([around(a, 10, 0.03, 1), around(b, 4, 0.03, 2)])
    anchors = around(known, 10, 0.03, 4)
    grouping = group_images(vectors, 0.9, anchors, ["known"] * 10, {"known": 0.9}, min_cluster_size=5)
    assert [sorted(g.members) for g in grouping.groups] == [list(range(10))]
    assert grouping_images_with(vectors[10:], reference=0.9).groups == []


def test_a_loose_group_is_refused_by_the_tightness_check():
    a, known = directions(2, seed=4)
    vectors = around(a, 12, 0.1, 5)  # cosines about 0.86: below a reference of 0.95
    anchors = around(known, 10, 0.03, 6)

    def grouped(reference):
        return group_images(vectors, reference, anchors, ["known"] * 10, {"known": reference}, min_cluster_size=5)

    loose = grouped(0.95)
    assert loose.groups == []
    assert loose.let_go and {part.why for part in loose.let_go} == {"too loose"}
    assert [sorted(g.members) for g in grouped(0.6).groups] == [list(range(12))]  # tight enough at a lower reference


def test_a_candidate_is_held_to_a_typical_generator_threshold_when_that_is_below_the_global_one():
    assert tightness_bar({"a": 0.6, "b": 0.7, "c": 0.95}, 0.95) == pytest.approx(0.7)  # the median
    assert tightness_bar({"a": 0.97, "b": 0.99}, 0.95) == 0.95  # never above the global threshold
    assert tightness_bar({}, 0.9) == 0.9
    a, known = directions(2, seed=4)
    vectors = around(a, 12, 0.1, 5)  # held-out scores about 0.86-0.9: under the global 0.95, over a typical 0.7
    anchors = around(known, 10, 0.03, 6)
    owners, thresholds = ["known"] * 10, {"known": 0.95}
    strict = group_images(vectors, 0.95, anchors, owners, thresholds, min_cluster_size=5)
    typical = group_images(vectors, 0.95, anchors, owners, thresholds, min_cluster_size=5, bar=0.7)
    assert strict.groups == [] and [sorted(g.members) for g in typical.groups] == [list(range(12))]
    assert 0 < typical.groups[0].tightness < 0.95 - 0.7  # measured against the bar, not the reference


def test_reference_photographs_get_the_threshold_enrollment_would_calibrate_for_them():
    photo, known, elsewhere = directions(3, seed=20)
    references = around(photo, 10, 0.12, 21)  # photographs vary: held-out scores far below a 0.95 reference
    anchors = around(known, 10, 0.03, 22)
    threshold = references_threshold(references, anchors, fallback=0.95)
    assert threshold < 0.95
    held = np.sort(np.array([np.sort(references[i] @ np.delete(references, i, 0).T)[-3:].mean() for i in range(10)]))
    assert threshold <= held[0] + 1e-6  # raised no further than the references' lowest held-out score allows
    assert references_threshold(references[:1], anchors, fallback=0.95) == 0.95
    assert references_threshold(references, np.zeros((0, DIM), np.float32), fallback=0.95) == 0.95
    members = around(photo, 6, 0.12, 23)  # more photographs of that pipeline, as loose as the references
    far_from_enrolled = np.full(6, -0.1)  # below every enrolled threshold, as in the dev protocol
    at_reference = check_photos([[]] * 6, members, far_from_enrolled, references, 0.95)
    calibrated = check_photos([[]] * 6, members, far_from_enrolled, references, threshold)
    assert not at_reference.photographs and calibrated.photographs and calibrated.photo_like == 6
    stranger = check_photos([[]] * 6, around(elsewhere, 6, 0.02, 24), np.full(6, -0.05), references, threshold)
    assert not stranger.photographs


def grouping_images_with(vectors, reference):
    return group_images(vectors, reference=reference, min_cluster_size=5)


def test_two_sources_close_together_are_split_never_mixed():
    a = directions(1, seed=6)[0]
    b = unit((a + 0.35 * directions(1, seed=7)[0])[None, :])[0]  # cos(a, b) about 0.94
    first, second = around(a, 10, 0.01, 8), around(b, 10, 0.01, 9)
    mixed = np.vstack([first, second])
    halves, figures = mixed_halves(mixed, reference=0.98)
    assert sorted(map(sorted, [np.flatnonzero(halves == 0), np.flatnonzero(halves == 1)])) == [
        list(range(10)), list(range(10, 20))]
    assert figures["cross_0"] < 0.98 <= figures["own_0"]
    assert mixed_halves(first, reference=0.98) is None  # one source: not split
    grouping = group_images(mixed, reference=0.98, min_cluster_size=5)
    assert sorted(sorted(g.members) for g in grouping.groups) == [list(range(10)), list(range(10, 20))]


def test_images_nearer_an_enrolled_generator_join_it_not_a_candidate():
    a, b = directions(2, seed=10)
    anchors = around(a, 10, 0.03, 11)
    vectors = np.vstack([around(a, 8, 0.03, 12), around(b, 8, 0.03, 13)])
    grouping = group_images(vectors, 0.9, anchors, ["known"] * 10, {"known": 0.9}, min_cluster_size=5)
    assert [sorted(g.members) for g in grouping.groups] == [list(range(8, 16))]
    beside = set(grouping.near_enrolled) | {i for p in grouping.let_go if p.why == NEARER_ENROLLED for i in p.members}
    assert set(range(8)) <= beside
    assert set(grouping.near_enrolled.values()) <= {"known"}


def exif(make, model, software=None):
    fields = {"Make": make, "Model": model}
    if software:
        fields["Software"] = software
    return [{"kind": "exif", "generator": None, "ai_generated": None, "error": None, "detail": {"fields": fields}}]


def test_camera_metadata_names_the_camera_unless_a_generator_is_named():
    assert camera_of(exif("Canon", "Canon EOS 80D")) == "Canon EOS 80D"
    assert camera_of(exif("NIKON", "D750")) == "NIKON D750"
    assert camera_of([]) is None
    claimed = exif("Canon", "EOS") + [{"kind": "generation-parameters", "generator": "sdxl", "error": None}]
    assert camera_of(claimed) is None


def test_a_candidate_is_photographs_when_most_members_say_camera_or_sit_by_the_reference_photos():
    (a, b) = directions(2, seed=14)
    members = around(a, 6, 0.02, 15)
    none = np.full(6, -0.2)
    assert check_photos([exif("Canon", "EOS")] * 4 + [[]] * 2, members, none, np.zeros((0, DIM)), 0.9).photographs
    assert not check_photos([exif("Canon", "EOS")] * 2 + [[]] * 4, members, none, np.zeros((0, DIM)), 0.9).photographs
    near = check_photos([[]] * 6, members, none, around(a, 5, 0.02, 16), 0.9)
    assert near.photographs and near.photo_like == 6
    far = check_photos([[]] * 6, members, none, around(b, 5, 0.02, 17), 0.9)
    assert not far.photographs and far.photo_like == 0


def with_camera(paths, make="Canon", model="Canon EOS 80D"):
    for path in paths:
        with Image.open(path) as im:
            pixels = im.copy()
        tags = Image.Exif()
        tags[0x010F], tags[0x0110] = make, model
        pixels.save(path, exif=tags)
    return paths


@pytest.fixture
def gallery_and_unknowns(tmp_path, plugin):
    from attrib.gallery import Gallery

    plugin(type(bound().impl), name="test-cohort-colormean")
    with Gallery(tmp_path / "g") as gallery:
        for name in ("red", "blue"):
            gallery.enroll(name, make_images(tmp_path / "enrolled" / name, name, 10), bound())
    unknown = tmp_path / "unknown"
    make_images(unknown, "gray", 8, seed=1)
    with_camera(make_images(unknown, "green", 8, seed=2))
    make_images(unknown / "lone", "red", 1, seed=3, size=(64, 64))
    return tmp_path / "g", unknown


def test_discover_cli_finds_candidates_labels_photos_and_enrolls_one(gallery_and_unknowns, tmp_path):
    gallery, unknown = gallery_and_unknowns
    runner = CliRunner()
    out = tmp_path / "candidates.json"
    page = tmp_path / "discover.html"
    done = runner.invoke(cli, ["--gallery", str(gallery), "discover", str(unknown), "--json", "--output", str(out),
                               "--report", str(page), "-e", "colormean"])
    assert done.exit_code == 0, done.output
    data = json.loads(done.output)
    kinds = {c["kind"]: c for c in data["candidates"]}
    assert set(kinds) == {GENERATOR, PHOTOGRAPHS}
    assert all("gray" in m["path"] for m in kinds[GENERATOR]["members"]) and kinds[GENERATOR]["size"] >= 6
    assert all("green" in m["path"] for m in kinds[PHOTOGRAPHS]["members"])
    assert kinds[PHOTOGRAPHS]["photo"]["cameras"] == {"Canon EOS 80D": kinds[PHOTOGRAPHS]["size"]}
    assert data["candidates"][0]["kind"] == GENERATOR  # offered generators come first
    assert json.loads(out.read_text())["candidates"] == data["candidates"]
    html = page.read_text()
    assert html.count("data:image/") >= kinds[GENERATOR]["size"] and "photographs" in html and "<script" not in html

    photo_id, generator_id = kinds[PHOTOGRAPHS]["id"], kinds[GENERATOR]["id"]
    refused = runner.invoke(cli, ["--gallery", str(gallery), "discover", "--enroll", photo_id, "--generator", "cam",
                                  "--from", str(out)])
    assert refused.exit_code == 1 and "photographs" in refused.output and "--force" in refused.output
    enrolled = runner.invoke(cli, ["--gallery", str(gallery), "discover", "--enroll", generator_id, "--generator",
                                   "grayish", "--from", str(out), "--json"])
    assert enrolled.exit_code == 0, enrolled.output
    assert len(json.loads(enrolled.output)["added"]) == kinds[GENERATOR]["size"]
    audit = runner.invoke(cli, ["--gallery", str(gallery), "gallery", "audit", "--json"])
    assert "grayish" in audit.output
    listed = runner.invoke(cli, ["--gallery", str(gallery), "gallery", "list", "--json"])
    assert "grayish" in listed.output


def test_enroll_refuses_a_file_changed_since_discovery(gallery_and_unknowns, tmp_path):
    gallery, unknown = gallery_and_unknowns
    runner = CliRunner()
    out = tmp_path / "candidates.json"
    assert runner.invoke(cli, ["--gallery", str(gallery), "discover", str(unknown), "--output", str(out),
                               "-e", "colormean"]).exit_code == 0
    candidate = next(c for c in json.loads(out.read_text())["candidates"] if c["kind"] == GENERATOR)
    victim = candidate["members"][0]["path"]
    Image.new("RGB", (80, 96), (1, 2, 3)).save(victim)
    done = runner.invoke(cli, ["--gallery", str(gallery), "discover", "--enroll", candidate["id"], "--generator", "x",
                               "--from", str(out)])
    assert done.exit_code == 1 and "changed since it was discovered" in done.output
    missing = runner.invoke(cli, ["--gallery", str(gallery), "discover", "--enroll", "c9", "--generator", "x",
                                  "--from", str(out)])
    assert missing.exit_code == 1 and "no candidate 'c9'" in missing.output


def test_records_give_only_their_unknown_answers(tmp_path):
    from attrib.discovery.inputs import unknown_answers

    records = tmp_path / "out.jsonl"
    records.write_text("\n".join([json.dumps({"path": "a.png", "decision": "unknown"}),
                                  json.dumps({"path": "b.png", "decision": "red"}),
                                  json.dumps({"path": "c.png", "error": "broken"}),
                                  json.dumps({"path": "a.png", "decision": "unknown"}), '{"path": "torn']))
    found = unknown_answers([records])
    assert [p.name for p in found.paths] == ["a.png"]
    assert found.to_json() == {"unknown": 1, "decided": 1, "error_records": 1, "unreadable_lines": 1}


def test_evaluation_reports_purity_recovery_and_where_photos_end(tmp_path, plugin):
    from attrib.evaluation.discovery import evaluate_discovery

    plugin(type(bound().impl), name="test-cohort-colormean")
    data = tmp_path / "data"
    for label, seed in (("red", 0), ("blue", 1), ("gray", 2), ("green", 3)):
        make_images(data / label, label, 16, seed=seed)
    result = evaluate_discovery(data, ["red", "blue"], ["gray"], ["green"], extractor=bound(), shots=5, repeats=1,
                                condition="center-crop:64", pool="all", photo_shots=4)
    summary = result["summary"]
    assert summary["hidden"]["gray"]["recovered_at_purity_mean"] >= 0.5
    assert summary["min_purity_3plus"] >= 0.8
    green = summary["distractors"]["green"]
    assert sum(green.values()) == 12  # 16 less the 4 reference photographs, each counted once
    assert green["offered"] == 0


def test_evaluation_with_laundered_queries_groups_them_against_a_gallery_of_originals(tmp_path, plugin,
                                                                                     monkeypatch):
    import attrib.evaluation.discovery as evaluation
    from attrib.errors import AttribError
    from attrib.evaluation.discovery import evaluate_discovery

    plugin(type(bound().impl), name="test-cohort-colormean")
    drawn = []

    def recorded(*args, **kwargs):
        enroll, queries = real_draw(*args, **kwargs)
        drawn.append((enroll, queries))
        return enroll, queries

    real_draw = evaluation.draw_split
    monkeypatch.setattr(evaluation, "draw_split", recorded)
    data = tmp_path / "data"
    for label, seed in (("red", 0), ("blue", 1), ("gray", 2)):
        make_images(data / label, label, 16, seed=seed)
    result = evaluate_discovery(data, ["red", "blue"], ["gray"], extractor=bound(), shots=5, repeats=1,
                                condition="center-crop:64", pool="all", query_condition="jpeg:80")
    assert result["config"]["query_condition"] == "jpeg:80"
    (enroll, queries), = drawn
    assert all(p.suffix == ".png" for paths in enroll.values() for p in paths)  # the gallery: originals
    assert queries and all(p.suffix == ".jpg" for _, p in queries)  # the queries: as they travel
    assert result["summary"]["hidden"]["gray"]["recovered_at_purity_mean"] >= 0.5  # colour survives JPEG
    with pytest.raises(AttribError, match="jpgg"):
        evaluate_discovery(data, ["red", "blue"], ["gray"], extractor=bound(), shots=5, repeats=1,
                           condition="center-crop:64", query_condition="jpgg:80")
