"""The five ImageNet models as :class:`PartitionedModel` chains, in plain PyTorch.

Architectures follow the torchvision definitions (so parameter counts match the
published ones), cut into segments at layer level (AlexNet, VGG-16; ReLU/BN folded
into the preceding conv) or block level (ResNet-18, GoogLeNet, MobileNetV2; never
inside a residual or inception block). Weights are random from a fixed seed: latency
does not depend on weight values, and nothing is downloaded.
"""

from __future__ import annotations

from typing import Callable

import torch
from torch import nn

from models.custom import (ModelRegistrationError, NotSplittableError, build_registered,
                           check_model, get_spec, load_plugin, register_model,
                           registered_models, unregister_model)
from models.partitioned import PartitionedModel, Segment

#: The built-in models. Models added with :func:`register_model` (or a plug-in) are
#: not in it: :func:`model_names` lists both.
MODEL_NAMES = ("alexnet", "resnet18", "googlenet", "vgg16", "mobilenet_v2")

__all__ = ["MODEL_NAMES", "ModelRegistrationError", "NotSplittableError", "UnknownModelError",
           "build_model", "check_model", "is_known_model", "load_plugin", "model_names",
           "register_model", "registered_models", "unregister_model"]


class UnknownModelError(ValueError):
    """Raised by :func:`build_model` for a name that is neither built in nor registered."""


def model_names() -> tuple[str, ...]:
    """The built-in models, then the registered ones (plug-ins in
    ``$SDNCEP_MODEL_PLUGINS`` loaded first)."""
    return MODEL_NAMES + registered_models()


def is_known_model(name: str) -> bool:
    """True for a built-in or registered model name."""
    return name in MODEL_NAMES or (isinstance(name, str) and get_spec(name) is not None)


def _conv_relu(cin: int, cout: int, k: int, stride: int = 1, pad: int = 0) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, k, stride, pad), nn.ReLU(inplace=True))


def _fc(cin: int, cout: int, flatten: bool = False, dropout: float = 0.0, relu: bool = True):
    layers: list[nn.Module] = [nn.Flatten(1)] if flatten else []
    if dropout:
        layers.append(nn.Dropout(dropout))
    layers.append(nn.Linear(cin, cout))
    if relu:
        layers.append(nn.ReLU(inplace=True))
    return nn.Sequential(*layers)


# --------------------------------------------------------------------- AlexNet
def _alexnet(num_classes: int) -> list[Segment]:
    return [
        Segment("conv1", "conv", _conv_relu(3, 64, 11, 4, 2)),
        Segment("pool1", "pool", nn.MaxPool2d(3, 2)),
        Segment("conv2", "conv", _conv_relu(64, 192, 5, 1, 2)),
        Segment("pool2", "pool", nn.MaxPool2d(3, 2)),
        Segment("conv3", "conv", _conv_relu(192, 384, 3, 1, 1)),
        Segment("conv4", "conv", _conv_relu(384, 256, 3, 1, 1)),
        Segment("conv5", "conv", _conv_relu(256, 256, 3, 1, 1)),
        Segment("pool5", "pool", nn.Sequential(nn.MaxPool2d(3, 2), nn.AdaptiveAvgPool2d((6, 6)))),
        Segment("fc6", "fc", _fc(256 * 6 * 6, 4096, flatten=True, dropout=0.5)),
        Segment("fc7", "fc", _fc(4096, 4096, dropout=0.5)),
        Segment("fc8", "fc", _fc(4096, num_classes, relu=False)),
    ]


# --------------------------------------------------------------------- VGG-16
def _vgg16(num_classes: int) -> list[Segment]:
    cfg = [[64, 64], [128, 128], [256, 256, 256], [512, 512, 512], [512, 512, 512]]
    segs: list[Segment] = []
    cin = 3
    for stage, widths in enumerate(cfg, start=1):
        for j, cout in enumerate(widths, start=1):
            segs.append(Segment(f"conv{stage}_{j}", "conv", _conv_relu(cin, cout, 3, 1, 1)))
            cin = cout
        pool: nn.Module = nn.MaxPool2d(2, 2)
        if stage == len(cfg):
            pool = nn.Sequential(pool, nn.AdaptiveAvgPool2d((7, 7)))
        segs.append(Segment(f"pool{stage}", "pool", pool))
    segs += [
        Segment("fc6", "fc", _fc(512 * 7 * 7, 4096, flatten=True)),
        Segment("fc7", "fc", _fc(4096, 4096, dropout=0.5)),
        Segment("fc8", "fc", _fc(4096, num_classes, dropout=0.5, relu=False)),
    ]
    return segs


# --------------------------------------------------------------------- ResNet-18
class BasicBlock(nn.Module):
    """ResNet basic block: two 3x3 conv+BN with an identity or 1x1 projection shortcut."""

    def __init__(self, cin: int, cout: int, stride: int = 1) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.downsample: nn.Module | None = None
        if stride != 1 or cin != cout:
            self.downsample = nn.Sequential(
                nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout)
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + identity)


def _resnet18(num_classes: int) -> list[Segment]:
    segs = [
        Segment("conv1", "conv", nn.Sequential(
            nn.Conv2d(3, 64, 7, 2, 3, bias=False), nn.BatchNorm2d(64), nn.ReLU(inplace=True))),
        Segment("pool1", "pool", nn.MaxPool2d(3, 2, 1)),
    ]
    cin = 64
    for stage, cout in enumerate([64, 128, 256, 512], start=1):
        for j in range(2):
            stride = 2 if (stage > 1 and j == 0) else 1
            segs.append(Segment(f"layer{stage}.{j}", "block", BasicBlock(cin, cout, stride)))
            cin = cout
    segs += [
        Segment("avgpool", "pool", nn.AdaptiveAvgPool2d((1, 1))),
        Segment("fc", "fc", _fc(512, num_classes, flatten=True, relu=False)),
    ]
    return segs


# --------------------------------------------------------------------- GoogLeNet
class BasicConv2d(nn.Module):
    """Conv (no bias) + BN(eps=1e-3) + ReLU, as in torchvision's GoogLeNet."""

    def __init__(self, cin: int, cout: int, **kw) -> None:
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, bias=False, **kw)
        self.bn = nn.BatchNorm2d(cout, eps=0.001)
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.relu(self.bn(self.conv(x)))


class Inception(nn.Module):
    """Four-branch inception block; the "5x5" branch uses a 3x3 kernel exactly like
    torchvision's GoogLeNet (whose parameter count, 6.6M, we match)."""

    def __init__(self, cin, ch1x1, ch3x3red, ch3x3, ch5x5red, ch5x5, pool_proj) -> None:
        super().__init__()
        self.branch1 = BasicConv2d(cin, ch1x1, kernel_size=1)
        self.branch2 = nn.Sequential(
            BasicConv2d(cin, ch3x3red, kernel_size=1),
            BasicConv2d(ch3x3red, ch3x3, kernel_size=3, padding=1))
        self.branch3 = nn.Sequential(
            BasicConv2d(cin, ch5x5red, kernel_size=1),
            BasicConv2d(ch5x5red, ch5x5, kernel_size=3, padding=1))
        self.branch4 = nn.Sequential(
            nn.MaxPool2d(3, 1, 1, ceil_mode=True),
            BasicConv2d(cin, pool_proj, kernel_size=1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat(
            [self.branch1(x), self.branch2(x), self.branch3(x), self.branch4(x)], 1)


def _googlenet(num_classes: int) -> list[Segment]:
    inc = {
        "3a": (192, 64, 96, 128, 16, 32, 32), "3b": (256, 128, 128, 192, 32, 96, 64),
        "4a": (480, 192, 96, 208, 16, 48, 64), "4b": (512, 160, 112, 224, 24, 64, 64),
        "4c": (512, 128, 128, 256, 24, 64, 64), "4d": (512, 112, 144, 288, 32, 64, 64),
        "4e": (528, 256, 160, 320, 32, 128, 128), "5a": (832, 256, 160, 320, 32, 128, 128),
        "5b": (832, 384, 192, 384, 48, 128, 128),
    }

    def block(key: str) -> Segment:
        return Segment(f"inception{key}", "inception", Inception(*inc[key]))

    return [
        Segment("conv1", "conv", BasicConv2d(3, 64, kernel_size=7, stride=2, padding=3)),
        Segment("pool1", "pool", nn.MaxPool2d(3, 2, ceil_mode=True)),
        Segment("conv2", "conv", BasicConv2d(64, 64, kernel_size=1)),
        Segment("conv3", "conv", BasicConv2d(64, 192, kernel_size=3, padding=1)),
        Segment("pool2", "pool", nn.MaxPool2d(3, 2, ceil_mode=True)),
        block("3a"), block("3b"),
        Segment("pool3", "pool", nn.MaxPool2d(3, 2, ceil_mode=True)),
        block("4a"), block("4b"), block("4c"), block("4d"), block("4e"),
        Segment("pool4", "pool", nn.MaxPool2d(2, 2, ceil_mode=True)),
        block("5a"), block("5b"),
        Segment("avgpool", "pool", nn.AdaptiveAvgPool2d((1, 1))),
        Segment("fc", "fc", _fc(1024, num_classes, flatten=True, dropout=0.2, relu=False)),
    ]


# --------------------------------------------------------------------- MobileNetV2
def _conv_bn_relu6(cin: int, cout: int, k: int = 3, stride: int = 1, groups: int = 1):
    return nn.Sequential(
        nn.Conv2d(cin, cout, k, stride, (k - 1) // 2, groups=groups, bias=False),
        nn.BatchNorm2d(cout), nn.ReLU6(inplace=True))


class InvertedResidual(nn.Module):
    """MobileNetV2 block: 1x1 expand, 3x3 depthwise, 1x1 linear project (+ skip)."""

    def __init__(self, cin: int, cout: int, stride: int, expand: int) -> None:
        super().__init__()
        hidden = cin * expand
        self.use_res = stride == 1 and cin == cout
        layers: list[nn.Module] = []
        if expand != 1:
            layers.append(_conv_bn_relu6(cin, hidden, 1))
        layers += [
            _conv_bn_relu6(hidden, hidden, 3, stride, groups=hidden),
            nn.Conv2d(hidden, cout, 1, bias=False), nn.BatchNorm2d(cout),
        ]
        self.conv = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv(x) if self.use_res else self.conv(x)


def _mobilenet_v2(num_classes: int) -> list[Segment]:
    cfg = [(1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2),
           (6, 96, 3, 1), (6, 160, 3, 2), (6, 320, 1, 1)]
    segs = [Segment("conv1", "conv", _conv_bn_relu6(3, 32, 3, 2))]
    cin, n_block = 32, 0
    for t, c, n, s in cfg:
        for j in range(n):
            n_block += 1
            segs.append(Segment(f"invres{n_block}", "invres",
                                InvertedResidual(cin, c, s if j == 0 else 1, t)))
            cin = c
    segs += [
        Segment("conv_last", "conv", _conv_bn_relu6(cin, 1280, 1)),
        Segment("avgpool", "pool", nn.AdaptiveAvgPool2d((1, 1))),
        Segment("fc", "fc", _fc(1280, num_classes, flatten=True, dropout=0.2, relu=False)),
    ]
    return segs


# --------------------------------------------------------------------- factory
_BUILDERS: dict[str, Callable[[int], list[Segment]]] = {
    "alexnet": _alexnet,
    "resnet18": _resnet18,
    "googlenet": _googlenet,
    "vgg16": _vgg16,
    "mobilenet_v2": _mobilenet_v2,
}
assert tuple(_BUILDERS) == MODEL_NAMES


def _init_weights(model: nn.Module) -> None:
    """torchvision-style initialisation, so activations stay in a sane range."""
    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)
        elif isinstance(m, nn.Linear):
            nn.init.normal_(m.weight, 0, 0.01)
            nn.init.zeros_(m.bias)


def build_model(name: str, seed: int = 0, num_classes: int | None = None) -> PartitionedModel:
    """Build model ``name`` with random weights from ``seed``, in eval mode. The global
    torch RNG state is left untouched.

    ``name`` is one of :data:`MODEL_NAMES` (``num_classes`` default 1000) or a model
    registered with :func:`register_model` (its builder runs with the torch RNG seeded
    by ``seed``; ``num_classes`` is passed to it only if given)."""
    try:
        builder = _BUILDERS[name]
    except (KeyError, TypeError):
        spec = get_spec(name) if isinstance(name, str) else None
        if spec is None:
            raise UnknownModelError(
                f"unknown model {name!r}; valid names: {', '.join(model_names())} "
                "(add one with models.zoo.register_model or a plug-in: "
                "docs/howto/add-a-model.md)") from None
        return build_registered(spec, seed=seed, num_classes=num_classes)
    num_classes = 1000 if num_classes is None else num_classes
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = PartitionedModel(name, builder(num_classes), (3, 224, 224), num_classes)
        _init_weights(model)
    return model.eval()
