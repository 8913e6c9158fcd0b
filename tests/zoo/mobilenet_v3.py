"""A MobileNetV3-style classifier written as timm writes it (transformers has no MobileNetV3): inverted residual
blocks with squeeze-excitation, hard-swish and hard-sigmoid, for the zoo as a factory source
(`mobilenet_v3:make_model`). Small and random-initialised, with torch's default init (healthy activations)."""

from __future__ import annotations

import torch
from torch import nn


class SqueezeExcite(nn.Module):
    def __init__(self, channels: int, reduced: int):
        super().__init__()
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.reduce = nn.Conv2d(channels, reduced, 1)
        self.expand = nn.Conv2d(reduced, channels, 1)

    def forward(self, x):
        scale = self.expand(torch.relu(self.reduce(self.pool(x))))
        return x * nn.functional.hardsigmoid(scale)


class InvertedResidual(nn.Module):
    def __init__(self, cin: int, hidden: int, cout: int, kernel: int, stride: int, se: bool, act: type[nn.Module]):
        super().__init__()
        self.expand = nn.Sequential(nn.Conv2d(cin, hidden, 1, bias=False), nn.BatchNorm2d(hidden), act())
        self.depthwise = nn.Sequential(
            nn.Conv2d(hidden, hidden, kernel, stride, kernel // 2, groups=hidden, bias=False),
            nn.BatchNorm2d(hidden),
            act(),
        )
        self.se = SqueezeExcite(hidden, max(8, hidden // 4)) if se else nn.Identity()
        self.project = nn.Sequential(nn.Conv2d(hidden, cout, 1, bias=False), nn.BatchNorm2d(cout))
        self.residual = stride == 1 and cin == cout

    def forward(self, x):
        y = self.project(self.se(self.depthwise(self.expand(x))))
        return x + y if self.residual else y


class MobileNetV3Small(nn.Module):
    def __init__(self, num_classes: int = 2):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, 16, 3, 2, 1, bias=False), nn.BatchNorm2d(16), nn.Hardswish())
        self.blocks = nn.Sequential(
            InvertedResidual(16, 16, 16, 3, 2, True, nn.ReLU),
            InvertedResidual(16, 48, 24, 3, 2, False, nn.ReLU),
            InvertedResidual(24, 64, 24, 3, 1, False, nn.ReLU),
            InvertedResidual(24, 96, 40, 5, 2, True, nn.Hardswish),
        )
        self.head = nn.Sequential(nn.Conv2d(40, 96, 1, bias=False), nn.BatchNorm2d(96), nn.Hardswish())
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Sequential(nn.Linear(96, 128), nn.Hardswish(), nn.Linear(128, num_classes))

    def forward(self, x):
        return self.classifier(self.pool(self.head(self.blocks(self.stem(x)))).flatten(1))


def make_model():
    torch.manual_seed(0)
    model = MobileNetV3Small()
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.BatchNorm2d):  # running statistics of a trained model, not the identity
                m.running_mean.copy_(0.1 * torch.randn_like(m.running_mean))
                m.running_var.copy_(1 + 0.1 * torch.rand_like(m.running_var))
    model.bmsdk_spec = {
        "name": "mobilenet-v3",
        "task": "image-classification",
        "input_shapes": {"input": [1, 3, 32, 32]},
        "mean": [0.485, 0.456, 0.406],
        "std": [0.229, 0.224, 0.225],
        "labels": ["negative", "positive"],
    }
    return model.eval()
