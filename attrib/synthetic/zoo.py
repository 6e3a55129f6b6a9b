"""A deterministic synthetic generator zoo: simulated image generators with real, subtle fingerprints.

Used by the demo, the tests and the evaluation so that "which generator made this image?" is a
genuine forensic problem (fingerprints live in the noise residual, not in the colours or the scene).

How a simulated generator works
-------------------------------
A generator is named ``"<family>-<seed>"`` (``"tconv-2"``, ``"bicubic-7"``; any integer seed is
valid). The family name hashed with ``zlib.crc32`` (never Python's ``hash()``) and the integer
seed together seed ``numpy.random.default_rng``, which draws the generator's fixed random "weights"
once. Rendering image ``index`` is then a small fixed *decoder*:

1. **Content.** A scene is rendered at low resolution ``ceil(size / factor)``, like a latent or a
   low-resolution feature map (``factor`` is 2, or 4 for ``multistage``, whose images are thus a
   little softer: a property of that architecture, not of the scene). The generator's own
   near-identity 3x3 colour mix, per-channel gain/offset and gamma are applied there, plus a little
   per-image "latent" noise (1-2% of full scale), which the decoder then shapes.
2. **Up-sampling**, by architecture family (:data:`FAMILIES`):

   ``nearest``     pixel replication;
   ``bilinear``    half-pixel-aligned linear interpolation;
   ``bicubic``     cubic convolution, the kernel parameter ``a`` drawn per seed;
   ``tconv``       transposed convolution, stride 2, random 4x4 or 3x3 kernel per channel whose four
                   stride phases do not sum exactly alike -> a faint checkerboard;
   ``shuffle``     sub-pixel convolution + pixel shuffle, random 1x1 (per-phase colour matrices) or
                   3x3 (per-phase, per-channel kernels) weights;
   ``upconv``      nearest/bilinear up-sampling followed by a random 3x3 conv layer (3 -> 3 channels);
   ``multistage``  two stages of (nearest x2 + random 3x3 smoothing conv + mild non-linearity).

   The random weights are perturbations of a sensible interpolator, so images look natural (no
   visible grid), but each set of weights leaves its own periodic, spectral trace.
3. **Post-processing**, drawn per generator as well: a fixed multiplicative PRNU-like pattern
   (spatially coloured noise, ~0.4% amplitude), per-image noise of a generator-specific strength,
   then a random (possibly asymmetric) 3x3 post-filter (blur or sharpen) that colours that noise,
   and rounding to uint8 RGB.

So two generators of the same family but different seeds differ only through their weights and the
post-processing: separable, but not trivially.

Content is shared
-----------------
Content depends on ``index`` only, never on the generator: ``render(g1, i)`` and ``render(g2, i)``
show the same scene (up to colour and sub-pixel shifts), so a classifier can only succeed from the
generator's traces, never from what is pictured. Scenes are a mix of procedural images (gradients,
band-limited fractal noise, gratings, anti-aliased shapes; drawn from a RNG seeded by ``index``) and
random crops / flips / rotations of the photographs that ship inside scikit-image's wheel (only files
present on disk in ``skimage/data`` are read; nothing is ever downloaded). Without scikit-image
the zoo silently uses procedural content only (the images for a given index then differ from an
installation with scikit-image, but stay deterministic).
"""

from __future__ import annotations

import functools
import math
import os
import pathlib
import re
import zlib

import numpy as np
from PIL import Image
from scipy import ndimage

__all__ = ["FAMILIES", "zoo_generator_names", "render", "write_zoo"]

FAMILIES: tuple[str, ...] = ("nearest", "bilinear", "bicubic", "tconv", "shuffle", "upconv",
                             "multistage")
DEFAULT_SEEDS: tuple[int, ...] = (1, 2)
_SALT = "attrib-zoo/v1"
_PHOTOS = (
    "astronaut.png", "camera.png", "coffee.png", "chelsea.png", "rocket.jpg", "grass.png",
    "gravel.png", "brick.png", "motorcycle_left.png", "motorcycle_right.png", "coins.png",
    "hubble_deep_field.jpg", "moon.png", "retina.jpg",
)
_NAME_RE = re.compile(r"^([a-z]+)-(-?\d+)$")
_IMAGE_FORMATS = {"png": "PNG", "jpg": "JPEG", "jpeg": "JPEG", "webp": "WEBP", "bmp": "BMP",
                  "tif": "TIFF", "tiff": "TIFF"}


def _crc(*parts: object) -> int:
    return zlib.crc32("|".join(str(p) for p in (_SALT,) + parts).encode("utf-8"))


def _words(seed: int) -> list[int]:
    """Any Python int (negative, > 2**32) as non-negative 32-bit words for default_rng."""
    return [seed % 2 ** 32, (seed >> 32) % 2 ** 32, int(seed < 0)]


def zoo_generator_names() -> list[str]:
    """The default zoo: every family with seeds 1 and 2, in a fixed order (14 names)."""
    return [f"{fam}-{seed}" for fam in FAMILIES for seed in DEFAULT_SEEDS]


def _parse(generator: str) -> tuple[str, int]:
    m = _NAME_RE.match(str(generator).strip().lower())
    if not m or m.group(1) not in FAMILIES:
        raise ValueError(f"unknown zoo generator {generator!r}: expected '<family>-<integer seed>' "
                         f"with family one of {', '.join(FAMILIES)} (e.g. 'tconv-3')")
    return m.group(1), int(m.group(2))


# --- Content: depends on the index only ---------------------------------------------------

@functools.lru_cache(maxsize=1)
def _photo_paths() -> tuple[str, ...]:
    try:  # importing skimage.data never downloads; we only list files already on disk
        import skimage.data
        folder = os.path.dirname(skimage.data.__file__)
    except Exception:
        return ()
    return tuple(os.path.join(folder, n) for n in _PHOTOS if os.path.isfile(os.path.join(folder, n)))


@functools.lru_cache(maxsize=None)
def _load_photo(path: str) -> np.ndarray | None:
    try:
        with Image.open(path) as im:
            return np.asarray(im.convert("RGB"))
    except Exception:
        return None


def _photo_content(rng: np.random.Generator, h: int) -> np.ndarray | None:
    paths = _photo_paths()
    photo = _load_photo(paths[int(rng.integers(len(paths)))])
    if photo is None:
        return None
    H, W = photo.shape[:2]
    side = max(16, int(min(H, W) * rng.uniform(0.3, 0.95)))
    y0, x0 = int(rng.integers(0, H - side + 1)), int(rng.integers(0, W - side + 1))
    crop = photo[y0:y0 + side, x0:x0 + side]
    crop = crop[:, ::-1] if rng.random() < 0.5 else crop
    crop = np.rot90(crop, int(rng.integers(4))) if rng.random() < 0.25 else crop
    img = Image.fromarray(np.ascontiguousarray(crop)).resize((h, h), Image.Resampling.LANCZOS)
    out = np.asarray(img, dtype=np.float32) / 255.0
    if np.ptp(out.reshape(-1, 3).mean(0)) < 1e-3 and np.allclose(out[..., 0], out[..., 2]):
        tint = rng.uniform(0.75, 1.0, 3).astype(np.float32)  # grey photos get a mild colour cast
        out = out * tint + (1 - tint) * rng.uniform(0, 0.3, 3).astype(np.float32)
    return out


def _fractal(rng: np.random.Generator, yy: np.ndarray, xx: np.ndarray, h: int, beta: float, n: int = 24) -> np.ndarray:
    """Band-limited random-Fourier fractal noise, resolution independent (std ~ 1)."""
    f = np.exp(rng.uniform(np.log(1.0), np.log(48.0), n))
    theta = rng.uniform(0, 2 * np.pi, n)
    phase = rng.uniform(0, 2 * np.pi, n)
    amp = f ** (-beta) * (f < h / 2.5)  # drop what the low-res grid cannot hold
    out = np.zeros_like(xx)
    for k in np.nonzero(amp)[0]:
        out += amp[k] * np.cos(2 * np.pi * f[k] * (np.cos(theta[k]) * xx + np.sin(theta[k]) * yy)
                               + phase[k])
    return out / (np.sqrt((amp ** 2).sum() / 2) + 1e-8)


def _procedural_content(rng: np.random.Generator, h: int) -> np.ndarray:
    c = (np.arange(h, dtype=np.float32) + 0.5) / h
    yy, xx = np.meshgrid(c, c, indexing="ij")
    base = rng.uniform(0.1, 0.9, (3, 3)).astype(np.float32)  # colour at origin, d/dx, d/dy
    img = (base[0] + (base[1] - base[0]) * xx[..., None] * rng.uniform(0.3, 1.0)
           + (base[2] - base[0]) * yy[..., None] * rng.uniform(0.3, 1.0))
    tex = _fractal(rng, yy, xx, h, beta=rng.uniform(0.6, 1.6))
    img = img + rng.uniform(0.03, 0.15) * tex[..., None] * rng.uniform(0.5, 1.0, 3)
    for _ in range(int(rng.integers(2, 9))):
        col = rng.uniform(0, 1, 3).astype(np.float32)
        cy, cx = rng.uniform(-0.1, 1.1, 2)
        ang = rng.uniform(0, np.pi)
        u = (xx - cx) * np.cos(ang) + (yy - cy) * np.sin(ang)
        v = -(xx - cx) * np.sin(ang) + (yy - cy) * np.cos(ang)
        a, b = rng.uniform(0.05, 0.35, 2)
        if rng.random() < 0.5:  # ellipse, signed distance approx in pixels
            d = (np.sqrt((u / a) ** 2 + (v / b) ** 2) - 1) * min(a, b) * h
        else:  # rotated rectangle
            d = np.maximum(np.abs(u) - a, np.abs(v) - b) * h
        alpha = np.clip(0.5 - d, 0, 1) * rng.uniform(0.6, 1.0)  # ~1 px anti-aliased edge
        fill = col
        if rng.random() < 0.4:  # textured shape: grating or noise
            if rng.random() < 0.5:
                fq = rng.uniform(3, min(30, h / 4))
                g = np.cos(2 * np.pi * fq * (u * np.cos(ang * 3) + v * np.sin(ang * 3)))
            else:
                g = _fractal(rng, yy, xx, h, beta=rng.uniform(0.3, 1.0), n=12)
            fill = col + rng.uniform(0.05, 0.25) * g[..., None]
        img = img * (1 - alpha[..., None]) + fill * alpha[..., None]
    return np.clip(img, 0, 1).astype(np.float32)


@functools.lru_cache(maxsize=96)
def _content(index: int, h: int) -> np.ndarray:
    """The scene for ``index`` at h x h resolution (float32 in [0, 1]), identical for all generators."""
    rng = np.random.default_rng([_crc("content"), index])
    out = None
    if rng.random() < 0.5 and _photo_paths():
        out = _photo_content(rng, h)
    if out is None:
        out = _procedural_content(rng, h)
    out.setflags(write=False)
    return out


# --- Decoders: family-specific up-sampling, weights fixed by the name -----------------------

def _cubic(d: np.ndarray, a: float) -> np.ndarray:
    d = np.abs(d)
    return np.where(d <= 1, (a + 2) * d ** 3 - (a + 3) * d ** 2 + 1,
                    np.where(d < 2, a * d ** 3 - 5 * a * d ** 2 + 8 * a * d - 4 * a, 0.0))


def _phases_1d(kind: str, a: float = -0.5) -> tuple[np.ndarray, np.ndarray]:
    """5-tap correlation kernels (offsets -2..2) for the two output phases of a x2 up-sampler."""
    if kind == "nearest":
        return np.array([0, 0, 1, 0, 0.0]), np.array([0, 0, 1, 0, 0.0])
    if kind == "bilinear":
        return np.array([0, .25, .75, 0, 0]), np.array([0, 0, .75, .25, 0])
    off = np.arange(-2, 3)
    p0, p1 = _cubic(off + 0.25, a), _cubic(off - 0.25, a)
    p0[-1] = p1[0] = 0.0
    return p0 / p0.sum(), p1 / p1.sum()


def _up2_separable(x: np.ndarray, p0: np.ndarray, p1: np.ndarray) -> np.ndarray:
    for axis in (0, 1):
        n = x.shape[axis]
        pad = [(0, 0)] * x.ndim
        pad[axis] = (2, 2)
        xp = np.pad(x, pad, mode="edge")
        ys = []
        for taps in (p0, p1):
            y = np.zeros_like(x)
            for t in np.nonzero(taps)[0]:
                y += np.float32(taps[t]) * np.take(xp, np.arange(t, t + n), axis=axis)
            ys.append(y)
        shape = list(x.shape)
        shape[axis] *= 2
        x = np.stack(ys, axis=axis + 1).reshape(shape)
    return x


def _interleave(ph: list[np.ndarray]) -> np.ndarray:
    """ph[2*p+q] is output phase (p, q) of a x2 up-sampler, each h x w x 3."""
    h, w, c = ph[0].shape
    return np.stack(ph).reshape(2, 2, h, w, c).transpose(2, 0, 3, 1, 4).reshape(2 * h, 2 * w, c)


def _corr(x: np.ndarray, k: np.ndarray) -> np.ndarray:
    """Correlate HxWxC ``x`` (edge padding, same size) with k: (kh, kw) shared by all channels,
    (kh, kw, C) one kernel per channel, or (kh, kw, Cin, Cout) a full conv layer.
    Shifted-slice sums on channel-first planes with scalar weights (several x faster than
    scipy.ndimage here; broadcasting a length-3 weight vector over the last axis is slow)."""
    kh, kw = k.shape[:2]
    H, W, C = x.shape
    k = np.asarray(k, np.float32)
    if k.ndim == 2:  # shared kernel: stay channel-last
        xp = np.pad(x, ((kh // 2, (kh - 1) // 2), (kw // 2, (kw - 1) // 2), (0, 0)), mode="edge")
        return sum(xp[i:i + H, j:j + W] * k[i, j] for i in range(kh) for j in range(kw))
    xp = np.pad(np.moveaxis(x, -1, 0), ((0, 0), (kh // 2, (kh - 1) // 2), (kw // 2, (kw - 1) // 2)),
                mode="edge")
    out = np.zeros((k.shape[3] if k.ndim == 4 else C, H, W), np.float32)
    for i in range(kh):
        for j in range(kw):
            sl = xp[:, i:i + H, j:j + W]
            if k.ndim == 3:
                for c in range(C):
                    out[c] += sl[c] * k[i, j, c]
            else:
                for ci in range(C):
                    for co in range(out.shape[0]):
                        out[co] += sl[ci] * k[i, j, ci, co]
    return np.ascontiguousarray(np.moveaxis(out, 0, -1))


def _smooth3(rng: np.random.Generator, sigma: float, gain_jitter: float, wmin: float = 0.15) -> np.ndarray:
    """Random near-smoothing 3x3 kernel: binomial-ish blur + noise, sum 1 +- gain_jitter."""
    w = rng.uniform(wmin, 0.5)
    b = np.array([w, 1 - 2 * w + 1.0, w])
    k = np.outer(b, b)
    k = k / k.sum() + rng.normal(0, sigma, (3, 3))
    return k / k.sum() * (1 + rng.normal(0, gain_jitter))


class _Decoder:
    """All the fixed random weights of one generator, drawn once from its name."""

    def __init__(self, family: str, seed: int):
        self.family, self.name = family, f"{family}-{seed}"
        rng = np.random.default_rng([_crc("gen", family), *_words(seed)])
        self.factor = 4 if family == "multistage" else 2
        f = family
        if f in ("nearest", "bilinear", "bicubic"):
            self.phases = _phases_1d(f, a=rng.uniform(-0.75, -0.45))
        elif f == "tconv":
            ksize = 4 if rng.random() < 0.6 else 3
            base = np.outer(*(2 * [np.array([.25, .75, .75, .25] if ksize == 4 else [.5, 1, .5])]))
            ks = []
            for _ in range(3):  # per channel: random taps, the 4 stride phases' gains differ ~1%
                k = base + rng.normal(0, 0.02, base.shape)
                for p in range(2):
                    for q in range(2):
                        k[p::2, q::2] *= (1 + rng.normal(0, 0.008)) / k[p::2, q::2].sum()
                ks.append(k)
            self.kernels = np.stack(ks)
            self.mix = np.eye(3) + rng.normal(0, 0.01, (3, 3))
        elif f == "shuffle":
            self.one_by_one = rng.random() < 0.4
            if self.one_by_one:
                self.phase_mats = np.eye(3) * (1 + rng.normal(0, 0.004, (4, 1, 1))) \
                    + rng.normal(0, 0.003, (4, 3, 3))
                self.post = _smooth3(rng, 0.01, 0.0)
            else:
                b = [np.array([.25, .75, 0]), np.array([0, .75, .25])]
                phases = np.array([[np.outer(b[p], b[q]) for _c in range(3)] for p in range(2)
                                   for q in range(2)])
                phases = phases + rng.normal(0, 0.012, phases.shape)
                sums = phases.sum(axis=(2, 3), keepdims=True)
                self.phase_kernels = phases / sums * (1 + rng.normal(0, 0.006, (4, 1, 1, 1)))
        elif f == "upconv":
            self.pre = _phases_1d("nearest" if rng.random() < 0.5 else "bilinear")
            k = np.array([_smooth3(rng, 0.02, 0.0) for _ in range(3)])
            cross = rng.normal(0, 0.01, (3, 3, 3, 3))
            cross -= cross.mean(axis=(2, 3), keepdims=True)  # cross-channel edges only
            for c in range(3):
                cross[c, c] = k[c]
            self.conv = cross
            self.bias = rng.normal(0, 0.004, 3)
        elif f == "multistage":
            self.stages = [np.array([_smooth3(rng, 0.02, 0.004, 0.35) for _ in range(3)])
                           for _ in range(2)]
            self.nonlin = rng.uniform(0.02, 0.08, 2)
        # post-processing shared by every family
        self.color = np.diag(rng.uniform(0.95, 1.05, 3)) + rng.normal(0, 0.02, (3, 3))
        self.offset = rng.normal(0, 0.01, 3)
        self.gamma = rng.uniform(0.9, 1.1)
        s = rng.uniform(-0.35, 0.5)  # negative: sharpen
        delta = np.pad([[1.0]], 1)
        blur = np.outer([1, 2, 1], [1, 2, 1]) / 16.0
        k = (1 - s) * delta + s * blur + rng.normal(0, 0.015, (3, 3))
        self.postfilter = k / k.sum()
        self.prnu_amp = rng.uniform(0.002, 0.006)
        self.prnu_sigma = rng.uniform(0.0, 1.2)
        self.noise = rng.uniform(0.5, 2.0) / 255.0
        self.latent_noise = rng.uniform(2.0, 4.5) / 255.0

    def upsample(self, x: np.ndarray) -> np.ndarray:
        f = self.family
        if f in ("nearest", "bilinear", "bicubic"):
            return _up2_separable(x, *self.phases)
        if f == "tconv":
            x = x @ self.mix.T.astype(np.float32)
            h, w, _ = x.shape  # pad, zero-insert (stride 2), convolve, crop: no border seams
            xp = np.pad(x, ((2, 2), (2, 2), (0, 0)), mode="edge")
            z = np.zeros((2 * h + 8, 2 * w + 8, 3), np.float32)
            z[::2, ::2] = xp
            y = _corr(z, self.kernels[:, ::-1, ::-1].transpose(1, 2, 0))
            return y[4:4 + 2 * h, 4:4 + 2 * w]
        if f == "shuffle":
            if self.one_by_one:
                up = _interleave([x @ m.T.astype(np.float32) for m in self.phase_mats])
                return _corr(up, self.post)
            return _interleave([_corr(x, self.phase_kernels[i].transpose(1, 2, 0))
                                for i in range(4)])
        if f == "upconv":
            up = _up2_separable(x, *self.pre)
            return _corr(up, self.conv.transpose(2, 3, 1, 0)) + self.bias.astype(np.float32)
        if f == "multistage":
            nn = _phases_1d("nearest")
            for kernels, beta in zip(self.stages, self.nonlin):
                x = _corr(_up2_separable(x, *nn), kernels.transpose(1, 2, 0))
                x = x + np.float32(beta) * (x - 0.5) * (1 - np.abs(2 * x - 1))  # mild S-curve
            return x
        raise AssertionError(f)


@functools.lru_cache(maxsize=64)
def _decoder(family: str, seed: int) -> _Decoder:
    return _Decoder(family, seed)


@functools.lru_cache(maxsize=32)
def _prnu(family: str, seed: int, size: int, sigma: float) -> np.ndarray:
    rng = np.random.default_rng([_crc("prnu", family), *_words(seed), size])
    p = rng.standard_normal((size, size, 3)).astype(np.float32)
    if sigma > 0.05:
        p = ndimage.gaussian_filter(p, (sigma, sigma, 0))
    p = (p - p.mean()) / (p.std() + 1e-8)
    p.setflags(write=False)
    return p


def _noise(rng: np.random.Generator, shape: tuple[int, ...], std: float) -> np.ndarray:
    """Zero-mean uniform noise of the given standard deviation (5x faster than Gaussian)."""
    u = rng.random(shape, dtype=np.float32) - np.float32(0.5)
    return u * np.float32(std * math.sqrt(12.0))


def render(generator: str, index: int, size: int = 256) -> np.ndarray:
    """Image ``index`` of zoo generator ``generator`` ("<family>-<seed>"): size x size x 3 uint8 RGB.

    Deterministic for (generator, index, size) on one machine (another CPU's float32 kernels may round a
    few pixels the other way; compare embeddings of zoo images by cosine, not bit for bit). Raises ValueError for an unknown family, a malformed
    name, a negative index or a size below 16.
    """
    family, seed = _parse(generator)
    index, size = int(index), int(size)
    if index < 0:
        raise ValueError(f"index must be >= 0, got {index}")
    if size < 16:
        raise ValueError(f"size must be >= 16, got {size}")
    dec = _decoder(family, seed)
    h = math.ceil(size / dec.factor)
    rng = np.random.default_rng([_crc("noise", family), *_words(seed), index, size])
    x = np.asarray(_content(index, h), dtype=np.float32)
    x = x @ dec.color.T.astype(np.float32) + dec.offset.astype(np.float32)
    x = np.clip(x, 0, 1) ** np.float32(dec.gamma)
    x = x + _noise(rng, x.shape, dec.latent_noise)  # latent noise: shaped by the decoder
    y: np.ndarray = dec.upsample(x)[:size, :size].astype(np.float32)
    y = y * (1 + dec.prnu_amp * _prnu(family, seed, size, round(dec.prnu_sigma, 3)))
    y = y + _noise(rng, y.shape, dec.noise)  # output noise: shaped by the post-filter
    y = _corr(y, dec.postfilter)
    return np.clip(np.rint(y * 255), 0, 255).astype(np.uint8)


def write_zoo(out_dir: str | os.PathLike[str], generators: list[str] | None = None, n_per: int = 20, size: int = 256,
              start: int = 0, fmt: str = "png") -> dict[str, list[pathlib.Path]]:
    """Write images ``start .. start+n_per-1`` of each generator to ``out_dir/<gen>/<gen>_<i:04d>.<fmt>``.

    Files already present with the right pixel size are kept (not re-rendered). Writes go through a
    temporary file and a rename, so an interrupted run never leaves a truncated image behind.
    Returns ``{generator: [paths in index order]}``; names are canonicalised (``"TConv-01"`` ->
    ``"tconv-1"``). ``fmt`` is one of png, jpg/jpeg, webp, bmp, tif/tiff (lossy formats damage the
    fingerprints, which may be what you want to test).
    """
    fmt = fmt.lower().lstrip(".")
    if fmt not in _IMAGE_FORMATS:
        raise ValueError(f"unsupported format {fmt!r}; use one of {', '.join(_IMAGE_FORMATS)}")
    names = zoo_generator_names() if generators is None else list(generators)
    canon = list(dict.fromkeys("%s-%d" % _parse(g) for g in names))  # validated, deduplicated
    out_dir = pathlib.Path(out_dir)
    result: dict[str, list[pathlib.Path]] = {name: [] for name in canon}
    for index in range(int(start), int(start) + int(n_per)):  # index-major: content is cached
        for name in canon:
            path = out_dir / name / f"{name}_{index:04d}.{fmt}"
            result[name].append(path)
            if path.is_file():
                try:
                    with Image.open(path) as im:
                        if im.size == (size, size):
                            continue
                except Exception:
                    pass  # unreadable: re-render
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
            kw = {"compress_level": 1} if fmt == "png" else {"quality": 95} if fmt in (
                "jpg", "jpeg", "webp") else {}
            try:
                Image.fromarray(render(name, index, size)).save(tmp, _IMAGE_FORMATS[fmt], **kw)
                os.replace(tmp, path)
            finally:
                tmp.unlink(missing_ok=True)
    return result
