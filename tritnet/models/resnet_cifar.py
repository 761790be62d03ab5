"""CIFAR ResNets (He et al. 2016, option-A shortcuts): ResNet-20/32/44/56/110.

The layer names match akamaster/pytorch_resnet_cifar10, so its pretrained files load as they are. Option A:
a downsampling shortcut subsamples by 2 and pads the new channels with zeros, so shortcuts hold no weights.
"""
from __future__ import annotations

import torch.nn as nn
import torch.nn.functional as F

from .registry import register_model


class ZeroPadShortcut(nn.Module):
    def __init__(self, extra_channels: int):
        super().__init__()
        self.extra = extra_channels

    def forward(self, x):
        x = x[:, :, ::2, ::2]
        return F.pad(x, (0, 0, 0, 0, self.extra // 2, self.extra - self.extra // 2))


class BasicBlock(nn.Module):
    def __init__(self, in_planes: int, planes: int, stride: int = 1):
        super().__init__()
        self.conv1 = nn.Conv2d(in_planes, planes, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.shortcut = nn.Identity()
        if stride != 1 or in_planes != planes:
            self.shortcut = ZeroPadShortcut(planes - in_planes)

    def forward(self, x):
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return F.relu(out + self.shortcut(x))


class CifarResNet(nn.Module):
    def __init__(self, blocks_per_stage: int, num_classes: int = 10, block=BasicBlock):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 16, 3, 1, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(16)
        stages, in_planes = [], 16
        for planes, stride in ((16, 1), (32, 2), (64, 2)):
            layers = []
            for i in range(blocks_per_stage):
                layers.append(block(in_planes, planes, stride if i == 0 else 1))
                in_planes = planes
            stages.append(nn.Sequential(*layers))
        self.layer1, self.layer2, self.layer3 = stages
        self.linear = nn.Linear(64, num_classes)
        for m in self.modules():
            if isinstance(m, (nn.Conv2d, nn.Linear)):
                nn.init.kaiming_normal_(m.weight)

    def forward(self, x):
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.layer3(self.layer2(self.layer1(out)))
        out = F.adaptive_avg_pool2d(out, 1).flatten(1)
        return self.linear(out)


def _cifar(depth: int):
    def build(num_classes: int = 10):
        return CifarResNet((depth - 2) // 6, num_classes)
    build.__name__ = f"resnet{depth}"
    return build


for _depth in (20, 32, 44, 56, 110):
    register_model(f"resnet{_depth}", pretrained_glob=f"resnet{_depth}-*.th",
                   notes=f"CIFAR ResNet-{_depth}, option-A shortcuts")(_cifar(_depth))
