"""ResNet-18/34 for ImageNet-size inputs (the torchvision topology: 7x7/2 stem, max-pool, BasicBlocks)."""
from __future__ import annotations

import torch.nn as nn
import torch.nn.functional as F

from .registry import register_model


class BasicBlock(nn.Module):
    def __init__(self, in_planes: int, planes: int, stride: int = 1):
        super().__init__()
        self.conv1 = nn.Conv2d(in_planes, planes, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.downsample = None
        if stride != 1 or in_planes != planes:
            self.downsample = nn.Sequential(nn.Conv2d(in_planes, planes, 1, stride, bias=False),
                                            nn.BatchNorm2d(planes))

    def forward(self, x):
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return F.relu(out + (x if self.downsample is None else self.downsample(x)))


class ResNet(nn.Module):
    def __init__(self, blocks: tuple[int, ...], num_classes: int = 1000):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 64, 7, 2, 3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.maxpool = nn.MaxPool2d(3, 2, 1)
        in_planes, stages = 64, []
        for planes, n, stride in zip((64, 128, 256, 512), blocks, (1, 2, 2, 2)):
            layers = []
            for i in range(n):
                layers.append(BasicBlock(in_planes, planes, stride if i == 0 else 1))
                in_planes = planes
            stages.append(nn.Sequential(*layers))
        self.layer1, self.layer2, self.layer3, self.layer4 = stages
        self.fc = nn.Linear(512, num_classes)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")

    def forward(self, x):
        x = self.maxpool(F.relu(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return self.fc(F.adaptive_avg_pool2d(x, 1).flatten(1))


@register_model("resnet18", input_size=(3, 224, 224), num_classes=1000, pretrained_glob="resnet18*.pth",
                notes="ImageNet ResNet-18 (torchvision layout)")
def resnet18(num_classes: int = 1000):
    return ResNet((2, 2, 2, 2), num_classes)


@register_model("resnet34", input_size=(3, 224, 224), num_classes=1000, pretrained_glob="resnet34*.pth",
                notes="ImageNet ResNet-34 (torchvision layout)")
def resnet34(num_classes: int = 1000):
    return ResNet((3, 4, 6, 3), num_classes)
