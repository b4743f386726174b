#!/usr/bin/python3
"""Exports a small quantized CNN made of the blocks of MobileNetV3, GoogLeNet and Inception v3
(hard-swish, a squeeze-and-excitation scale, depthwise convolution, parallel branches joined by a
channel concatenation, a 3x3 stride-1 max pool with ceil_mode, a padded average pool) as
torch.onnx.export writes it (QDQ, opset 13), with random weights and calibration (fixed seeds).

Usage: export_qdq_blocks.py OUT.onnx
"""
import sys
import warnings

import torch
from torch import nn
from torch.ao.nn.quantized import FloatFunctional
from torch.quantization import DeQuantStub, QuantStub

warnings.filterwarnings("ignore")


class Blocks(nn.Module):
    def __init__(self):
        super().__init__()
        self.quant, self.dequant = QuantStub(), DeQuantStub()
        self.stem, self.hs = nn.Conv2d(3, 16, 3, stride=2, padding=1), nn.Hardswish()
        self.dw, self.relu = nn.Conv2d(16, 16, 3, padding=1, groups=16), nn.ReLU()
        self.pool, self.fc1, self.relu2 = nn.AdaptiveAvgPool2d(1), nn.Conv2d(16, 8, 1), nn.ReLU()
        self.fc2, self.hsig, self.scale = nn.Conv2d(8, 16, 1), nn.Hardsigmoid(), FloatFunctional()
        self.b1, self.b2 = nn.Conv2d(16, 24, 1), nn.Conv2d(16, 8, 3, padding=1)
        self.maxpool, self.b3 = nn.MaxPool2d(3, 1, 1, ceil_mode=True), nn.Conv2d(16, 8, 1)
        self.b4 = nn.Conv2d(16, 8, 1)
        self.cat = FloatFunctional()
        self.head, self.hs2 = nn.Conv2d(48, 32, 1), nn.Hardswish()
        self.maxpool2 = nn.MaxPool2d(3, 2, ceil_mode=True)
        self.gap, self.fc = nn.AdaptiveAvgPool2d(1), nn.Linear(32, 10)

    def forward(self, x):
        x = self.hs(self.stem(self.quant(x)))
        y = self.relu(self.dw(x))
        s = self.hsig(self.fc2(self.relu2(self.fc1(self.pool(y)))))
        y = self.scale.mul(y, s)
        avg = nn.functional.avg_pool2d(y, kernel_size=3, stride=1, padding=1)  # Pad + AveragePool
        b = self.cat.cat([self.b1(y), self.b2(y), self.b3(self.maxpool(y)), self.b4(avg)], 1)
        z = self.maxpool2(self.hs2(self.head(b)))
        return self.dequant(self.fc(torch.flatten(self.gap(z), 1)))


def main():
    torch.manual_seed(0)
    torch.backends.quantized.engine = "onednn"
    m = Blocks().eval()
    m.qconfig = torch.quantization.get_default_qconfig("onednn")
    torch.quantization.prepare(m, inplace=True)
    with torch.no_grad():
        for _ in range(4):
            m(torch.randn(2, 3, 64, 64))
    torch.quantization.convert(m, inplace=True)
    torch.onnx.export(m, torch.randn(1, 3, 64, 64), sys.argv[1], opset_version=13, input_names=["input"],
                      output_names=["output"])


if __name__ == "__main__":
    main()
