"""Grouping unknown images into candidate sources: density clustering, then three checks.

Everything here works on unit vectors of one space (:class:`attrib.discovery.space.Pool`), where a
similarity is a cosine and a *score* against a set of vectors is the mean of the ``TOP_M`` highest
similarities to it, as the gallery scores a query against a generator
(:func:`attrib.scoring.calibration.aggregate`).

1. **Density clustering.** scikit-learn's HDBSCAN runs on the unknown images *together with every
   enrolled sample* (Euclidean distance on unit vectors: an order-preserving function of the cosine),
   with leaf selection (the finest stable clusters). A cluster that holds enrolled samples is an enrolled
   generator's neighbourhood, not a new source: its unknown images are reported beside that generator.
   An image in no cluster (HDBSCAN's noise) is a one-off. Only groups of at least ``min_cluster_size``
   unknown images are ever kept.
2. **Membership.** An image that HDBSCAN attached only weakly (membership strength, its
   ``probabilities_``, under ``MIN_STRENGTH``: it joined near the root of the cluster tree) and whose score
   against the other members is below the ``reference`` (the gallery's global threshold) is a stray and
   leaves. Then the candidate is treated as a generator the gallery would hold, with the reference as its
   threshold: an image stays only when its score against the candidate's other members minus that reference
   is higher than its score minus threshold against every enrolled generator, i.e. when identify, with the
   candidate enrolled, would rank the candidate first.
3. **One source per candidate.** The members are split in two (average-linkage on cosine distance);
   when each half, enrolled as a generator, would accept most of its own members (median held-out score
   at least the reference) and reject most of the other half's (median score against the other half below
   it), the candidate mixes two sources and is split; each part is checked again, and a part under
   ``min_cluster_size`` is let go.
4. **Tightness.** The candidate's *tightness* is the median over its members of (score against the
   other members - ``bar``): enrolled as a generator held to the bar, it would accept half of its own
   members held out when that is at least 0. Candidates under ``min_tightness`` are refused. The bar
   (:func:`tightness_bar`) is the lower of the gallery's global threshold (the reference: what a generator
   gets when it has too few impostors to calibrate its own) and the threshold of a typical enrolled
   generator (the median of theirs): a candidate need not be tighter than the gallery asks of a
   generator it holds. The split and membership checks keep the reference, which is calibrated on every
   generator's impostors at once and so usually above most generators' own: a group is split by the
   strict standard and kept by the typical one.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field

import numpy as np

from ..errors import AttribError
from ..scoring.calibration import TOP_M

MIN_CLUSTER_SIZE = 5
MIN_TIGHTNESS = 0.0
MIN_STRENGTH = 0.5
MAX_SPLIT_DEPTH = 4
SPLIT = "split"  # why images were let go: a part of a split candidate under min_cluster_size
NEARER_ENROLLED = "nearer an enrolled generator"
STRAY = "weakly attached"
LOOSE = "too loose"
SMALL = "too few images"


@dataclass
class Group:
    """A candidate source: indices of its member images (into the pool) and how it holds together."""

    members: list[int]
    probabilities: list[float]  # HDBSCAN's membership strength of each member (0-1)
    held_out: list[float]  # each member's score against the other members
    tightness: float  # median of held_out - reference
    strength: float  # mean HDBSCAN membership strength of its members (0-1; 1: every member in the cluster's core)
    split_from: int | None = None  # the HDBSCAN cluster it was split from, when it was


@dataclass
class LetGo:
    """Images that were in a cluster but are in no candidate, and why."""

    members: list[int]
    why: str
    cluster: int
    detail: dict[str, float] = field(default_factory=dict)


@dataclass
class Grouping:
    groups: list[Group]
    let_go: list[LetGo]
    near_enrolled: dict[int, str]  # image index -> the enrolled generator whose cluster it joined
    noise: list[int]  # images HDBSCAN put in no cluster


def top_mean(similarities: np.ndarray, top_m: int = TOP_M) -> np.ndarray:
    """Row-wise mean of the ``top_m`` highest values (all of them when fewer; -inf entries ignored)."""
    if similarities.shape[1] == 0:
        return np.full(len(similarities), -np.inf)
    m = min(top_m, similarities.shape[1])
    top = -np.sort(-similarities, axis=1)[:, :m]
    finite = np.isfinite(top)
    counts = np.maximum(finite.sum(axis=1), 1)
    return np.where(finite.any(axis=1), np.where(finite, top, 0.0).sum(axis=1) / counts, -np.inf)


def held_out_scores(vectors: np.ndarray) -> np.ndarray:
    """Each row's score against the other rows (itself left out)."""
    sims = vectors @ vectors.T
    np.fill_diagonal(sims, -np.inf)
    return top_mean(sims)


def enrolled_margins(vectors: np.ndarray, anchors: np.ndarray, owners: list[str], thresholds: dict[str, float]
                     ) -> tuple[np.ndarray, list[str | None]]:
    """Per row: its best (score - threshold) over the enrolled generators and which generator that is
    (-inf and None without enrolled samples)."""
    best = np.full(len(vectors), -np.inf)
    which: list[str | None] = [None] * len(vectors)
    if not len(anchors) or not len(vectors):
        return best, which
    sims = vectors @ anchors.T
    owner_array = np.asarray(owners)
    for name in dict.fromkeys(owners):
        margin = top_mean(sims[:, owner_array == name]) - thresholds[name]
        better = margin > best
        best = np.where(better, margin, best)
        which = [name if b else w for b, w in zip(better, which)]
    return best, which


def clustering_available() -> bool:
    """Whether scikit-learn, which groups the images, can be loaded (``attrib[eval]``)."""
    try:
        import sklearn.cluster  # noqa: F401
    except ImportError:
        return False
    return True


def _hdbscan(points: np.ndarray, min_cluster_size: int, min_samples: int | None) -> tuple[np.ndarray, np.ndarray]:
    from sklearn.cluster import HDBSCAN

    if len(points) < max(min_cluster_size, 2):
        return np.full(len(points), -1), np.zeros(len(points))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # scikit-learn's notes on future defaults
        model = HDBSCAN(min_cluster_size=min_cluster_size, min_samples=min_samples, metric="euclidean",
                        cluster_selection_method="leaf", copy=True, allow_single_cluster=True)
        model.fit(points.astype(np.float64))
    return model.labels_, model.probabilities_


def two_way_split(vectors: np.ndarray) -> np.ndarray:
    """Average-linkage split of the rows in two (cosine distance): a 0/1 label per row."""
    from scipy.cluster.hierarchy import fcluster, linkage

    distances = np.clip(1.0 - vectors @ vectors.T, 0.0, 2.0)
    condensed = distances[np.triu_indices(len(vectors), 1)]
    return fcluster(linkage(condensed, method="average"), 2, criterion="maxclust") - 1


def mixed_halves(vectors: np.ndarray, reference: float) -> tuple[np.ndarray, dict[str, float]] | None:
    """The two halves of :func:`two_way_split` when they are two sources by the gallery's standard (each
    would accept its own members and reject the other's: see the module docstring), else None; with the
    figures the test read."""
    if len(vectors) < 4:
        return None
    halves = two_way_split(vectors)
    figures: dict[str, float] = {}
    for side in (0, 1):
        own, other = vectors[halves == side], vectors[halves != side]
        if len(own) < 2 or len(other) < 1:
            return None
        figures[f"own_{side}"] = float(np.median(held_out_scores(own)))
        figures[f"cross_{side}"] = float(np.median(top_mean(own @ other.T)))
    two = all(figures[f"own_{s}"] >= reference > figures[f"cross_{s}"] for s in (0, 1))
    return (halves, figures) if two else None


def group_images(vectors: np.ndarray, reference: float, anchors: np.ndarray | None = None,
                 anchor_owners: list[str] | None = None, thresholds: dict[str, float] | None = None,
                 min_cluster_size: int = MIN_CLUSTER_SIZE, min_samples: int | None = None,
                 min_tightness: float = MIN_TIGHTNESS, bar: float | None = None) -> Grouping:
    """Candidate sources among ``vectors`` (unit rows), beside the enrolled samples ``anchors`` (unit rows,
    each of generator ``anchor_owners[i]``, whose threshold is ``thresholds[name]``); tightness is measured
    against ``bar`` (:func:`tightness_bar`; ``reference`` when None). See the module docstring."""
    if min_cluster_size < 2:
        raise AttribError(f"--min-cluster-size must be at least 2, got {min_cluster_size}")
    if min_samples is not None and min_samples < 1:
        raise AttribError(f"--min-samples must be at least 1, got {min_samples}")
    anchors = np.zeros((0, vectors.shape[1]), np.float32) if anchors is None else anchors
    owners = list(anchor_owners or [])
    thresholds = dict(thresholds or {})
    n_anchor = len(anchors)
    labels, strength = _hdbscan(np.vstack([anchors, vectors]), min_cluster_size, min_samples)
    anchor_labels, labels, strength = labels[:n_anchor], labels[n_anchor:], strength[n_anchor:]
    enrolled_best, _ = enrolled_margins(vectors, anchors, owners, thresholds)
    grouping = Grouping([], [], {}, [int(i) for i in np.flatnonzero(labels < 0)])
    for cluster in sorted(set(labels.tolist()) - {-1}):
        members = np.flatnonzero(labels == cluster)
        held = [owners[i] for i in np.flatnonzero(anchor_labels == cluster)]
        if held:
            name = max(set(held), key=held.count)
            grouping.near_enrolled.update((int(i), name) for i in members)
            continue
        _check(grouping, vectors, members, strength, cluster, reference, enrolled_best, min_cluster_size,
               min_tightness, reference if bar is None else bar, depth=0)
    return grouping


def tightness_bar(thresholds: dict[str, float], reference: float) -> float:
    """What a candidate's members are held to: the lower of ``reference`` (the global threshold) and the
    median of the enrolled generators' ``thresholds`` (see the module docstring)."""
    return min(reference, float(np.median(list(thresholds.values())))) if thresholds else reference


def _check(grouping: Grouping, vectors: np.ndarray, members: np.ndarray, strength: np.ndarray, cluster: int,
           reference: float, enrolled_best: np.ndarray, min_size: int, min_tightness: float, bar: float,
           depth: int) -> None:
    """Membership, one-source and tightness checks of one cluster (or part of one); keeps or lets go."""
    if len(members) < min_size:
        grouping.let_go.append(LetGo([int(i) for i in members], SPLIT if depth else SMALL, cluster))
        return
    stray = (strength[members] < MIN_STRENGTH) & (held_out_scores(vectors[members]) < reference)
    if stray.any():
        grouping.let_go.append(LetGo([int(i) for i in members[stray]], STRAY, cluster))
        members = members[~stray]
        if len(members) < min_size:
            grouping.let_go.append(LetGo([int(i) for i in members], SMALL, cluster))
            return
    candidate_margin = held_out_scores(vectors[members]) - reference
    nearer = candidate_margin <= enrolled_best[members]
    if nearer.any():
        grouping.let_go.append(LetGo([int(i) for i in members[nearer]], NEARER_ENROLLED, cluster))
        members = members[~nearer]
        if len(members) < min_size:
            grouping.let_go.append(LetGo([int(i) for i in members], SMALL, cluster))
            return
    mixed = mixed_halves(vectors[members], reference) if depth < MAX_SPLIT_DEPTH else None
    if mixed is not None:
        halves, _ = mixed
        for side in (0, 1):
            _check(grouping, vectors, members[halves == side], strength, cluster, reference, enrolled_best,
                   min_size, min_tightness, bar, depth + 1)
        return
    held_out = held_out_scores(vectors[members])
    tightness = float(np.median(held_out - bar))
    if tightness < min_tightness:
        grouping.let_go.append(LetGo([int(i) for i in members], LOOSE, cluster, {"tightness": round(tightness, 6)}))
        return
    grouping.groups.append(Group([int(i) for i in members], [round(float(strength[i]), 4) for i in members],
                                 [round(float(s), 6) for s in held_out], round(tightness, 6),
                                 round(float(np.mean(strength[members])), 4),
                                 cluster if depth else None))
