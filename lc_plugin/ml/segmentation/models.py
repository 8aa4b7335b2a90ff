"""The four segmentation architectures, all taking (N, T, C, H, W) raw reflectances with NaN = no data.

Every network starts with the same ``Normalise`` layer (per-channel mean/std from the training
tiles, NaN → 0 afterwards) and ends with class probabilities (N, K, H, W), so the exported ONNX
graph is self-contained: classification feeds the stack's values as they are.

- ``tfcn``: temporal fully-convolutional network (a temporal U-Net, as in eo-learn's example):
  3-D convolutions over (time, row, column) in the encoder, each skip and the bottleneck reduced
  over time by a (T, 1, 1) convolution, a 2-D U-Net decoder.
- ``unet``: U-Net on the time-flattened T·C channels.
- ``segnet``: SegNet, unpooling with the encoder's max-pooling indices.
- ``resunet``: U-Net whose encoder is made of ResNet basic blocks (strided downsampling).

H and W must be multiples of 2**depth (the tile size guarantees it).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ...core.deps import require

if TYPE_CHECKING:  # the checker reads torch's types; at run time torch comes through require (a clear message when missing)
    import torch
    from torch import nn
else:
    torch = require("torch")
    nn = torch.nn


class Normalise(nn.Module):
    """(x - mean) / std per channel C, then NaN → 0 (the mean), kept in the graph so ONNX inputs are raw."""

    def __init__(self, mean, std) -> None:
        super().__init__()
        self.register_buffer("mean", torch.as_tensor(mean, dtype=torch.float32).reshape(1, 1, -1, 1, 1))
        self.register_buffer("std", torch.as_tensor(std, dtype=torch.float32).reshape(1, 1, -1, 1, 1))

    def forward(self, x):
        x = (x - self.mean) / self.std
        return torch.where(torch.isnan(x), torch.zeros_like(x), x)


def _conv2d_block(cin: int, cout: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True),
        nn.Conv2d(cout, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True),
    )


def _conv3d_block(cin: int, cout: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv3d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm3d(cout), nn.ReLU(inplace=True),
        nn.Conv3d(cout, cout, 3, padding=1, bias=False), nn.BatchNorm3d(cout), nn.ReLU(inplace=True),
    )


class _Up(nn.Module):
    """U-Net decoder step: transposed-convolution upsampling, concatenation with the skip, two convolutions."""

    def __init__(self, cin: int, cskip: int, cout: int) -> None:
        super().__init__()
        self.up = nn.ConvTranspose2d(cin, cout, 2, stride=2)
        self.conv = _conv2d_block(cout + cskip, cout)

    def forward(self, x, skip):
        return self.conv(torch.cat([self.up(x), skip], dim=1))


class _UNetDecoder(nn.Module):
    """Shared decoder of the U-Net family: skips from shallow to deep, the last one is the bottleneck."""

    def __init__(self, widths: list[int], n_classes: int) -> None:
        super().__init__()
        self.ups = nn.ModuleList(_Up(widths[i + 1], widths[i], widths[i]) for i in reversed(range(len(widths) - 1)))
        self.head = nn.Conv2d(widths[0], n_classes, 1)

    def forward(self, features: list):
        x = features[-1]
        for up, skip in zip(self.ups, reversed(features[:-1])):
            x = up(x, skip)
        return self.head(x)


class SegmentationNet(nn.Module):
    """Normalise → backbone (logits) → softmax; ``logits`` is what training optimises.

    With a second (coarse) modality the backbone is a ``BottleneckFusion`` and each input has its own
    normalisation."""

    def __init__(self, backbone: nn.Module, mean, std, second_stats=None) -> None:
        super().__init__()
        self.normalise = Normalise(mean, std)
        self.normalise_2 = Normalise(*second_stats) if second_stats is not None else None
        self.backbone = backbone

    def logits(self, x, x2=None):
        if self.normalise_2 is None:
            return self.backbone(self.normalise(x))
        return self.backbone(self.normalise(x), self.normalise_2(x2))

    def forward(self, x, x2=None):
        return torch.softmax(self.logits(x, x2), dim=1)


class BottleneckFusion(nn.Module):
    """A U-Net-family backbone plus a branch for a coarse second modality, fused at the bottleneck.

    The coarse tile (N, T2, C2, h, w) covers the same ground as the fine tile at its own resolution (h = H·r1/r2,
    e.g. 4 px of 300 m under 120 px of 10 m). Its dates and bands are flattened into channels, two 3×3
    convolutions encode it at its own resolution, it is resized bilinearly to the bottleneck's size, concatenated
    there and mixed by a 1×1 convolution; the decoder's skips then restore the fine modality's detail.
    """

    def __init__(self, backbone: Any, n_dates: int, n_channels: int, width: int, bottleneck_width: int) -> None:  # a network with encode() and decoder()
        super().__init__()
        self.backbone = backbone
        self.coarse = _conv2d_block(n_dates * n_channels, width)
        self.fuse = nn.Sequential(nn.Conv2d(bottleneck_width + width, bottleneck_width, 1, bias=False), nn.BatchNorm2d(bottleneck_width), nn.ReLU(inplace=True))

    def forward(self, x, x2):
        features = self.backbone.encode(x)
        coarse = self.coarse(x2.flatten(1, 2))
        coarse = torch.nn.functional.interpolate(coarse, size=features[-1].shape[-2:], mode="bilinear", align_corners=False)
        features[-1] = self.fuse(torch.cat([features[-1], coarse], dim=1))
        return self.backbone.decoder(features)


class TFCN(nn.Module):
    def __init__(self, n_dates: int, n_channels: int, n_classes: int, widths: list[int]) -> None:
        super().__init__()
        self.encoders = nn.ModuleList(_conv3d_block(cin, cout) for cin, cout in zip([n_channels] + widths[:-1], widths))
        self.pool = nn.MaxPool3d((1, 2, 2))
        # Collapses the time axis of each skip and of the bottleneck: a learned temporal weighting.
        self.reduce = nn.ModuleList(nn.Conv3d(w, w, (n_dates, 1, 1)) for w in widths)
        self.decoder = _UNetDecoder(widths, n_classes)

    def encode(self, x) -> list:
        """2-D features of each level, shallow to deep (the last is the bottleneck)."""
        x = x.permute(0, 2, 1, 3, 4)  # (N, C, T, H, W)
        features = []
        for i, encoder in enumerate(self.encoders):
            x = encoder(self.pool(x) if i else x)
            features.append(torch.relu(self.reduce[i](x)).squeeze(2))
        return features

    def forward(self, x):
        return self.decoder(self.encode(x))


class UNet(nn.Module):
    def __init__(self, n_dates: int, n_channels: int, n_classes: int, widths: list[int]) -> None:
        super().__init__()
        self.encoders = nn.ModuleList(_conv2d_block(cin, cout) for cin, cout in zip([n_dates * n_channels] + widths[:-1], widths))
        self.pool = nn.MaxPool2d(2)
        self.decoder = _UNetDecoder(widths, n_classes)

    def encode(self, x) -> list:
        x = x.flatten(1, 2)  # (N, T·C, H, W)
        features = []
        for i, encoder in enumerate(self.encoders):
            x = encoder(self.pool(x) if i else x)
            features.append(x)
        return features

    def forward(self, x):
        return self.decoder(self.encode(x))


def _upsample2(x):
    return torch.nn.functional.interpolate(x, scale_factor=2.0, mode="nearest")


class SegNet(nn.Module):
    """Max-pooling "switches" (where each maximum was) place the decoder's values back, as SegNet's
    pooling indices do; kept as a mask rather than MaxUnpool so the ONNX graph has plain ops."""

    def __init__(self, n_dates: int, n_channels: int, n_classes: int, widths: list[int]) -> None:
        super().__init__()
        self.encoders = nn.ModuleList(_conv2d_block(cin, cout) for cin, cout in zip([n_dates * n_channels] + widths[:-1], widths))
        outs = [widths[0]] + widths[:-1]  # decoder i maps widths[i] back to the width one level up
        self.decoders = nn.ModuleList(_conv2d_block(w, o) for w, o in zip(widths, outs))
        self.head = nn.Conv2d(widths[0], n_classes, 1)

    def forward(self, x):
        x = x.flatten(1, 2)
        switches = []
        for encoder in self.encoders:
            x = encoder(x)
            pooled = torch.nn.functional.max_pool2d(x, 2)
            switches.append(x == _upsample2(pooled))
            x = pooled
        for i in reversed(range(len(self.decoders))):
            x = self.decoders[i](_upsample2(x) * switches[i])
        return self.head(x)


class _BasicBlock(nn.Module):
    """ResNet basic block: two 3×3 convolutions plus the (projected when the shape changes) input."""

    def __init__(self, cin: int, cout: int, stride: int) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(cin, cout, 3, stride=stride, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True),
            nn.Conv2d(cout, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout),
        )
        self.shortcut = (
            nn.Identity() if stride == 1 and cin == cout
            else nn.Sequential(nn.Conv2d(cin, cout, 1, stride=stride, bias=False), nn.BatchNorm2d(cout))
        )

    def forward(self, x):
        return torch.relu(self.body(x) + self.shortcut(x))


class ResUNet(nn.Module):
    def __init__(self, n_dates: int, n_channels: int, n_classes: int, widths: list[int]) -> None:
        super().__init__()
        cins = [n_dates * n_channels] + widths[:-1]
        self.encoders = nn.ModuleList(
            nn.Sequential(_BasicBlock(cin, cout, 1 if i == 0 else 2), _BasicBlock(cout, cout, 1))
            for i, (cin, cout) in enumerate(zip(cins, widths))
        )
        self.decoder = _UNetDecoder(widths, n_classes)

    def encode(self, x) -> list:
        x = x.flatten(1, 2)
        features = []
        for encoder in self.encoders:
            x = encoder(x)
            features.append(x)
        return features

    def forward(self, x):
        return self.decoder(self.encode(x))


_BACKBONES = {"tfcn": TFCN, "unet": UNet, "segnet": SegNet, "resunet": ResUNet}


def build_model(
    architecture: str, n_dates: int, n_channels: int, n_classes: int, *, width: int = 16, depth: int = 3, mean=None, std=None, second=None
) -> SegmentationNet:
    """A ``SegmentationNet`` of ``architecture`` with ``depth`` levels of widths width·2^i (depth - 1 poolings).

    ``second`` = (n_dates, n_channels, mean, std) of a coarse second modality fused at the bottleneck
    (TFCN, U-Net and ResNet U-Net; SegNet has no U-Net decoder to fuse into)."""
    widths = [width * 2**i for i in range(depth)]
    mean = [0.0] * n_channels if mean is None else mean
    std = [1.0] * n_channels if std is None else std
    backbone = _BACKBONES[architecture](n_dates, n_channels, n_classes, widths)
    if second is None:
        return SegmentationNet(backbone, mean, std)
    n_dates_2, n_channels_2, mean_2, std_2 = second
    mean_2 = [0.0] * n_channels_2 if mean_2 is None else mean_2
    std_2 = [1.0] * n_channels_2 if std_2 is None else std_2
    fused = BottleneckFusion(backbone, n_dates_2, n_channels_2, width, widths[-1])
    return SegmentationNet(fused, mean, std, (mean_2, std_2))


def downsampling(depth: int) -> int:
    """The factor H and W must be multiples of."""
    return 2 ** (depth - 1)
