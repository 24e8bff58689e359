"""Small deterministic PyTorch models for tests (shared by the frontend, quantizer and lead tests).

Each builder seeds its own torch.Generator, so the same call gives the same weights in any
process, and randomizes BatchNorm statistics so folding is actually exercised. All return
models in eval mode, each under ~100k parameters, with `example_input(model)` for the shape.
"""
from __future__ import annotations

import torch
from torch import nn

# Input shape (NCHW, batch 1) of each builder.
INPUT_SHAPES = {
    "tiny_cnn": (1, 3, 16, 16),
    "mobilenetv2_mini": (1, 3, 32, 32),
    "resnet_mini": (1, 3, 16, 16),
}


def _init(model: nn.Module, seed: int) -> nn.Module:
    """Deterministic weights and non-trivial BatchNorm statistics, then eval mode."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, (nn.Conv2d, nn.Linear)):
                fan_in = m.weight[0].numel()
                m.weight.copy_(torch.randn(m.weight.shape, generator=g) * (2.0 / fan_in) ** 0.5)
                if m.bias is not None:
                    m.bias.copy_(torch.randn(m.bias.shape, generator=g) * 0.1)
            elif isinstance(m, nn.BatchNorm2d):
                c = m.num_features
                m.weight.copy_(1.0 + 0.2 * torch.randn(c, generator=g))
                m.bias.copy_(0.1 * torch.randn(c, generator=g))
                m.running_mean.copy_(0.1 * torch.randn(c, generator=g))
                m.running_var.copy_(0.5 + torch.rand(c, generator=g))
    return model.eval()


def _conv_bn(c_in: int, c_out: int, k: int = 3, stride: int = 1, groups: int = 1) -> list:
    return [nn.Conv2d(c_in, c_out, k, stride, k // 2, groups=groups, bias=False),
            nn.BatchNorm2d(c_out)]


def tiny_cnn(seed: int = 0, num_classes: int = 10) -> nn.Module:
    """conv-bn-relu, maxpool, conv-bn-relu6, adaptive avgpool(1), flatten, linear, softmax."""
    model = nn.Sequential(
        *_conv_bn(3, 8), nn.ReLU(),
        nn.MaxPool2d(2),
        *_conv_bn(8, 16), nn.ReLU6(),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(16, num_classes),
        nn.Softmax(dim=-1),
    )
    return _init(model, seed)


class InvertedResidual(nn.Module):
    """MobileNetV2 block: 1x1 expand, 3x3 depthwise (maybe strided), 1x1 project, residual."""

    def __init__(self, c_in: int, c_out: int, stride: int, expand: int):
        super().__init__()
        hidden = c_in * expand
        self.use_residual = stride == 1 and c_in == c_out
        self.block = nn.Sequential(
            *_conv_bn(c_in, hidden, 1), nn.ReLU6(),
            *_conv_bn(hidden, hidden, 3, stride, groups=hidden), nn.ReLU6(),
            *_conv_bn(hidden, c_out, 1),
        )

    def forward(self, x):
        y = self.block(x)
        return x + y if self.use_residual else y


class MobileNetV2Mini(nn.Module):
    def __init__(self, num_classes: int = 10):
        super().__init__()
        self.features = nn.Sequential(
            *_conv_bn(3, 16, 3, 2), nn.ReLU6(),
            InvertedResidual(16, 16, 1, 2),
            InvertedResidual(16, 24, 2, 4),
            InvertedResidual(24, 24, 1, 4),
            InvertedResidual(24, 32, 2, 4),
            *_conv_bn(32, 64, 1), nn.ReLU6(),
        )
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(64, num_classes)

    def forward(self, x):
        x = self.pool(self.features(x))
        return self.classifier(torch.flatten(x, 1))


def mobilenetv2_mini(seed: int = 0, num_classes: int = 10) -> nn.Module:
    """MobileNetV2-style: depthwise, strided depthwise, residual add, ReLU6; input 1x3x32x32."""
    return _init(MobileNetV2Mini(num_classes), seed)


class BasicBlock(nn.Module):
    """ResNet basic block; a strided 1x1 conv-bn downsample on the shortcut when shapes change."""

    def __init__(self, c_in: int, c_out: int, stride: int):
        super().__init__()
        self.conv1, self.bn1 = _conv_bn(c_in, c_out, 3, stride)
        self.conv2, self.bn2 = _conv_bn(c_out, c_out, 3)
        self.relu = nn.ReLU()
        self.downsample = None
        if stride != 1 or c_in != c_out:
            self.downsample = nn.Sequential(*_conv_bn(c_in, c_out, 1, stride))

    def forward(self, x):
        y = self.relu(self.bn1(self.conv1(x)))
        y = self.bn2(self.conv2(y))
        shortcut = x if self.downsample is None else self.downsample(x)
        return self.relu(y + shortcut)


class ResNetMini(nn.Module):
    def __init__(self, num_classes: int = 10):
        super().__init__()
        self.stem = nn.Sequential(*_conv_bn(3, 16), nn.ReLU())
        self.layer1 = BasicBlock(16, 16, 1)
        self.layer2 = BasicBlock(16, 32, 2)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(32, num_classes)

    def forward(self, x):
        x = self.layer2(self.layer1(self.stem(x)))
        return self.fc(torch.flatten(self.pool(x), 1))


def resnet_mini(seed: int = 0, num_classes: int = 10) -> nn.Module:
    """Two residual basic blocks, the second strided with a 1x1 downsample."""
    return _init(ResNetMini(num_classes), seed)


BUILDERS = {"tiny_cnn": tiny_cnn, "mobilenetv2_mini": mobilenetv2_mini, "resnet_mini": resnet_mini}


def example_input(name: str, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(INPUT_SHAPES[name], generator=g)


def export_onnx(model: nn.Module, example: torch.Tensor, *, dynamo: bool = False,
                keep_batchnorm: bool = False, **kwargs):
    """torch -> onnx.ModelProto, quietly. The TorchScript exporter (fast) by default; with
    keep_batchnorm it skips constant folding so BatchNormalization nodes stay in the graph."""
    import contextlib
    import io
    import logging
    import warnings

    import onnx

    logging.getLogger("torch.onnx").setLevel(logging.ERROR)
    with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()), torch.no_grad():
        warnings.simplefilter("ignore")
        if dynamo:
            return torch.onnx.export(model, (example,), dynamo=True, verbose=False,
                                     report=False, **kwargs).model_proto
        buf = io.BytesIO()
        kwargs.setdefault("opset_version", 17)
        torch.onnx.export(model, (example,), buf, dynamo=False,
                          do_constant_folding=not keep_batchnorm, **kwargs)
        return onnx.load_from_string(buf.getvalue())


_EXPORTS: dict = {}


def exported(name: str, *, dynamo: bool = False, keep_batchnorm: bool = False):
    """The named test model exported to ONNX, cached per process (exports cost up to seconds)."""
    import onnx

    key = (name, dynamo, keep_batchnorm)
    if key not in _EXPORTS:
        proto = export_onnx(BUILDERS[name](), example_input(name), dynamo=dynamo,
                            keep_batchnorm=keep_batchnorm)
        _EXPORTS[key] = proto.SerializeToString()
    return onnx.ModelProto.FromString(_EXPORTS[key])
