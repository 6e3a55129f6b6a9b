"""Photo-likeness against the impostor cohort: which extractors can judge photographs (those that see a
camera's traces, not the scene), and camera photographs labelled with no reference photographs given."""

from __future__ import annotations

import numpy as np
from PIL import Image

from attrib.discovery.photos import (COHORT_JUDGE, PHOTO, check_photos, cohort_sources, judges_photographs,
                                     linear_photo_likeness, nearest_is_photographs)
from attrib.discovery.space import embed_pool
from attrib.extractors.resolve import bind_extractor
from attrib.gallery import open_gallery
from attrib.synthetic.cohort import items
from attrib.synthetic.zoo import write_zoo

DIM = 24


def unit(rows: np.ndarray) -> np.ndarray:
    return (rows / np.linalg.norm(rows, axis=-1, keepdims=True)).astype(np.float32)


def toy_cohort(trace_weight: float, scene_weight: float, seed: int = 0):
    """A cohort of 6 scenes, each photographed 4 times and rendered by 3 families of simulated generators
    (2 each): every image is its source's trace plus its scene, weighted as the space sees them."""
    rng = np.random.default_rng(seed)
    scenes, traces = unit(rng.normal(size=(6, DIM))), unit(rng.normal(size=(4, DIM)))  # traces[0]: a camera's
    rows, source, scene = [], [], []
    for s in range(6):
        for who, copies in ((0, 4), (1, 2), (2, 2), (3, 2)):
            for _ in range(copies):
                rows.append(trace_weight * traces[who] + scene_weight * scenes[s] + rng.normal(0, 0.05, DIM))
                source.append(PHOTO if who == 0 else f"family{who}")
                scene.append(f"scene{s}" if who == 0 else "")
    return unit(np.array(rows)), np.array(source), np.array(scene), traces


def test_a_space_that_sees_traces_judges_photographs_and_one_that_sees_the_scene_does_not():
    traces_space, source, scene, traces = toy_cohort(1.0, 0.3)
    scene_space, *_ = toy_cohort(0.3, 1.0)
    assert judges_photographs(traces_space, source, scene) >= COHORT_JUDGE
    assert judges_photographs(scene_space, source, scene) < 0.5  # the same scene rendered by a generator is nearer
    queries = unit(np.vstack([traces[0] + 0.3 * unit(np.ones(DIM)), traces[2] + 0.3 * unit(np.ones(DIM))]))
    assert nearest_is_photographs(queries, traces_space, source).tolist() == [True, False]


def test_the_linear_reading_counts_the_enrolled_samples_as_generated():
    space, source, _, traces = toy_cohort(1.0, 0.3)
    rng = np.random.default_rng(9)
    akin = unit(traces[0] + unit(rng.normal(size=DIM)))  # an enrolled generator whose trace is half a camera's
    enrolled, members = unit(akin + rng.normal(0, 0.05, (8, DIM))), unit(akin + rng.normal(0, 0.05, (6, DIM)))
    photos = unit(traces[0] + 0.3 * unit(rng.normal(size=(6, DIM))))
    assert linear_photo_likeness(members, space, source, np.zeros((0, DIM))).all()  # the cohort alone is fooled
    assert not linear_photo_likeness(members, space, source, enrolled).any()
    assert linear_photo_likeness(photos, space, source, enrolled).all()


def test_the_cohort_made_here_names_its_photographs_and_families_and_a_foreign_one_gets_nothing():
    rows = len(items())
    source, scene = cohort_sources(rows)
    assert {PHOTO, "tconv", "bicubic"} <= set(source.tolist())
    assert all(scene[source == PHOTO]) and not any(scene[source != PHOTO])
    assert cohort_sources(rows - 1) is None  # a cohort embedded with other rows (e.g. without the photographs)


def test_a_candidate_most_of_whose_members_are_photo_like_against_the_cohort_is_photographs():
    members = unit(np.random.default_rng(3).normal(size=(4, DIM)))
    none, no_refs = np.full(4, -0.1), np.zeros((0, DIM))
    labelled = check_photos([[]] * 4, members, none, no_refs, 0.9, np.array([True, True, True, False]))
    assert labelled.photographs and labelled.cohort_like == 3 and labelled.to_json()["photo_like_cohort"] == 3
    assert not check_photos([[]] * 4, members, none, no_refs, 0.9, np.array([True, False, False, False])).photographs
    assert check_photos([[]] * 4, members, none, no_refs, 0.9).cohort_like is None  # no extractor judges


def camera_crops(folder, n: int = 12) -> list:
    """``n`` crops of scikit-image's sample photographs, downscaled and saved as JPEG at 92: one camera pipeline."""
    import skimage.data

    folder.mkdir(parents=True)
    scenes = [skimage.data.astronaut(), skimage.data.coffee(), skimage.data.chelsea(), skimage.data.rocket()]
    paths = []
    for i in range(n):
        photo = Image.fromarray(scenes[i % len(scenes)])
        photo = photo.resize((int(photo.width * 0.8), int(photo.height * 0.8)), Image.Resampling.LANCZOS)
        left, top = 16 * (i // len(scenes)), 8 * (i // len(scenes))
        paths.append(folder / f"photo-{i:02d}.jpg")
        photo.crop((left, top, left + 192, top + 192)).save(paths[-1], quality=92)
    return paths


def test_residual_judges_photographs_and_tells_camera_crops_from_a_new_generator(tmp_path):
    residual = bind_extractor("residual")
    zoo = write_zoo(tmp_path / "zoo", ["bilinear-1", "tconv-1", "upconv-1", "shuffle-2"], n_per=12, size=192)
    with open_gallery(tmp_path / "g") as gallery:
        for name in ("bilinear-1", "tconv-1", "upconv-1"):
            gallery.enroll(name, zoo[name], residual, versions="none")
        photos = camera_crops(tmp_path / "photos")
        pool = embed_pool(gallery, [residual], photos + zoo["shuffle-2"], evidence=False)
    assert pool.photo_judges[residual.identity.key] >= COHORT_JUDGE
    like = pool.cohort_photo_like
    assert like is not None and like[:12].mean() >= 0.75 and like[12:].mean() <= 0.25
