"""The STTN variant of the CIFAR ResNet: ternary weights *and* ternary activations (Xu et al., IJCAI 2020).

As in STTN's resnet18_bwx2, every 3x3 conv of a block is its own residual unit:
    a = TernaryActivation(BN_in(x));  out = PReLU(BN_out(conv(a)) + shortcut(x))
where conv is a pair of binary filters (an STTN TernaryConv2d). The stem conv and the classifier stay float,
and the downsampling shortcut is a 2x2 max-pool followed by zero channels (no 1x1 conv).
"""
from __future__ import annotations

import torch.nn as nn
import torch.nn.functional as F

from ..nn import TernaryActivation, TernaryConv2d
from ..quant import STTNConfig
from .registry import register_model


class MaxPoolZeroShortcut(nn.Module):
    def __init__(self, extra_channels: int, stride: int):
        super().__init__()
        self.extra, self.stride = extra_channels, stride

    def forward(self, x):
        if self.stride > 1:
            x = F.max_pool2d(x, self.stride)
        return F.pad(x, (0, 0, 0, 0, 0, self.extra)) if self.extra else x


class TernaryUnit(nn.Module):
    def __init__(self, in_planes: int, planes: int, stride: int):
        super().__init__()
        self.bn_in = nn.BatchNorm2d(in_planes)
        self.act = TernaryActivation()
        self.conv = TernaryConv2d(in_planes, planes, 3, stride, 1, bias=False, config=STTNConfig())
        self.bn_out = nn.BatchNorm2d(planes)
        self.prelu = nn.PReLU(planes)
        self.shortcut = (MaxPoolZeroShortcut(planes - in_planes, stride)
                         if stride != 1 or in_planes != planes else nn.Identity())

    def forward(self, x):
        return self.prelu(self.bn_out(self.conv(self.act(self.bn_in(x)))) + self.shortcut(x))


class SttnBlock(nn.Sequential):
    def __init__(self, in_planes: int, planes: int, stride: int = 1):
        super().__init__(TernaryUnit(in_planes, planes, stride), TernaryUnit(planes, planes, 1))


class SttnCifarResNet(nn.Module):
    def __init__(self, blocks_per_stage: int, num_classes: int = 10):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 16, 3, 1, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(16)
        self.prelu = nn.PReLU(16)
        stages, in_planes = [], 16
        for planes, stride in ((16, 1), (32, 2), (64, 2)):
            blocks = []
            for i in range(blocks_per_stage):
                blocks.append(SttnBlock(in_planes, planes, stride if i == 0 else 1))
                in_planes = planes
            stages.append(nn.Sequential(*blocks))
        self.layer1, self.layer2, self.layer3 = stages
        self.linear = nn.Linear(64, num_classes)

    def forward(self, x):
        out = self.prelu(self.bn1(self.conv1(x)))
        out = self.layer3(self.layer2(self.layer1(out)))
        return self.linear(F.adaptive_avg_pool2d(out, 1).flatten(1))


for _depth in (20, 32, 44, 56):
    register_model(f"resnet{_depth}_sttn", notes=f"CIFAR ResNet-{_depth}, STTN ternary weights and activations")(
        (lambda n: lambda num_classes=10: SttnCifarResNet(n, num_classes))((_depth - 2) // 6))
