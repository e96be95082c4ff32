"""The networks: Kim et al.'s five-layer CNN, a small baseline, and a ResNet-18-style net for larger faces.

Every model takes (B, 1, size, size) normalised grey faces and returns class logits (softmax is in the
loss and at prediction); input size and classes come from the corpus manifest.
"""

from __future__ import annotations

import torch
from torch import nn

RESNET_STEM_DOWNSAMPLE_FROM = 96  # from this side on, the ImageNet stem (7x7/2 + max-pool); below it a 3x3/1 stem


def _conv_bn(cin: int, cout: int, k: int, pad: int) -> list[nn.Module]:
    return [nn.Conv2d(cin, cout, k, padding=pad, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True)]


class FiveLayerCNN(nn.Module):
    """Kim et al. (2016): conv 32@5x5, 32@4x4, 64@5x5, each then 3x3 max-pool stride 2; FC 1024, 30 % dropout.

    Batch norm after every layer. With paddings 2, 1, 2 and pooling padding 1, a 48x48 face leaves
    64 x 6 x 6 features, which gives the paper's 2.4 M parameters.
    """

    def __init__(self, classes: int, size: int = 48, channels: int = 1):
        super().__init__()
        pool = [nn.MaxPool2d(3, stride=2, padding=1)]
        self.features = nn.Sequential(
            *_conv_bn(channels, 32, 5, 2), *pool, *_conv_bn(32, 32, 4, 1), *pool, *_conv_bn(32, 64, 5, 2), *pool
        )
        with torch.no_grad():
            flat = self.features(torch.zeros(1, channels, size, size)).numel()
        self.classifier = nn.Sequential(
            nn.Flatten(),
            nn.Linear(flat, 1024, bias=False),
            nn.BatchNorm1d(1024),
            nn.ReLU(inplace=True),
            nn.Dropout(0.3),
            nn.Linear(1024, classes),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(x))


class Baseline(nn.Module):
    """Three 3x3 conv blocks and global average pooling (~25 k parameters): the floor any model must beat."""

    def __init__(self, classes: int, size: int = 48, channels: int = 1):
        super().__init__()
        self.net = nn.Sequential(
            *_conv_bn(channels, 16, 3, 1),
            nn.MaxPool2d(2),
            *_conv_bn(16, 32, 3, 1),
            nn.MaxPool2d(2),
            *_conv_bn(32, 64, 3, 1),
            nn.AdaptiveAvgPool2d(1),
            nn.Flatten(),
            nn.Linear(64, classes),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


class _Block(nn.Module):
    def __init__(self, cin: int, cout: int, stride: int):
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(cin, cout, 3, stride, 1, bias=False),
            nn.BatchNorm2d(cout),
            nn.ReLU(inplace=True),
            nn.Conv2d(cout, cout, 3, 1, 1, bias=False),
            nn.BatchNorm2d(cout),
        )
        self.skip = nn.Identity()
        if stride != 1 or cin != cout:
            self.skip = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.relu(self.body(x) + self.skip(x))


class ResNet18(nn.Module):
    """ResNet-18's four stages of two basic blocks (64-512 channels) for 1-channel faces of any side."""

    def __init__(self, classes: int, size: int = 112, channels: int = 1):
        super().__init__()
        if size >= RESNET_STEM_DOWNSAMPLE_FROM:
            stem = [nn.Conv2d(channels, 64, 7, 2, 3, bias=False), nn.BatchNorm2d(64), nn.ReLU(inplace=True)]
            stem.append(nn.MaxPool2d(3, 2, 1))
        else:
            stem = _conv_bn(channels, 64, 3, 1)
        stages, cin = [], 64
        for cout, stride in ((64, 1), (128, 2), (256, 2), (512, 2)):
            stages += [_Block(cin, cout, stride), _Block(cout, cout, 1)]
            cin = cout
        self.net = nn.Sequential(*stem, *stages, nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(512, classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


MODELS = {"five_layer": FiveLayerCNN, "baseline": Baseline, "resnet18": ResNet18}


def build(name: str, classes: int, size: int, channels: int = 1) -> nn.Module:
    if name not in MODELS:
        raise KeyError(f"unknown model {name!r} (known: {', '.join(MODELS)})")
    return MODELS[name](classes, size, channels)


def parameter_count(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())
