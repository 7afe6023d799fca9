"""The DINs network (Zhang et al., IEEE JBHI 2022), re-implemented channels-first (docs/baselines.md, DINs).

Layout ``(B, C, D, H, W)``: D = frames (A-P), H = rows (S-I), W = cols (R-L); D even, H and W multiples of 16.
Input ``image`` ``(B, 1, D, H, W)`` and ``guide`` ``(B, 2, D, H, W)`` (fg, bg); output ``logits`` ``(B, 2, D, H, W)``.
"""

from __future__ import annotations

import torch
from torch import nn

from mois_sam2_nf.data.view import triple

Triple = tuple[int, int, int]


def _triple(value: int | Triple) -> Triple:
    return (value, value, value) if isinstance(value, int) else value


class ConvBlock(nn.Module):
    """2 x (Conv3d without bias -> InstanceNorm3d(affine, eps 1e-3) -> ReLU); only the first conv may be strided.

    ``forward(x, add)`` adds ``add`` (if given) to the first normalised output, before its ReLU (the guide branch).
    """

    def __init__(self, in_channels: int, out_channels: int, kernel: int | Triple, stride: int | Triple = 1) -> None:
        super().__init__()
        kernel = _triple(kernel)
        padding = triple(k // 2 for k in kernel)
        self.conv1 = nn.Conv3d(in_channels, out_channels, kernel, _triple(stride), padding, bias=False)
        self.norm1 = nn.InstanceNorm3d(out_channels, eps=1e-3, affine=True)
        self.conv2 = nn.Conv3d(out_channels, out_channels, kernel, 1, padding, bias=False)
        self.norm2 = nn.InstanceNorm3d(out_channels, eps=1e-3, affine=True)
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor, add: torch.Tensor | None = None) -> torch.Tensor:
        x = self.norm1(self.conv1(x))
        if add is not None:
            x = x + add
        return self.relu(self.norm2(self.conv2(self.relu(x))))


class UpBlock(nn.Module):
    """ConvTranspose3d (kernel = stride, no bias), concatenation with the skip, then a :class:`ConvBlock`."""

    def __init__(self, in_channels: int, skip_channels: int, out_channels: int, stride: Triple,
                 kernel: int | Triple) -> None:
        super().__init__()
        self.up = nn.ConvTranspose3d(in_channels, out_channels, stride, stride, bias=False)
        self.block = ConvBlock(out_channels + skip_channels, out_channels, kernel)

    def forward(self, x: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
        return self.block(torch.cat([self.up(x), skip], dim=1))


class DINsNet(nn.Module):
    """DINs 3-D U-Net with a guide branch into the bridge.

    Args:
        base_channels: channels of the first level (reference 30); level ``l`` has ``min(base * 2^l, max_channels)``.
        max_channels: channel cap (reference 320).
    """

    def __init__(self, base_channels: int = 30, max_channels: int = 320) -> None:
        super().__init__()
        c = [min(base_channels * 2**level, max_channels) for level in range(5)]
        self.down1 = ConvBlock(3, c[0], (1, 3, 3))
        self.down2 = ConvBlock(c[0], c[1], (1, 3, 3), (1, 2, 2))
        self.down3 = ConvBlock(c[1], c[2], 3, (1, 2, 2))
        self.down4 = ConvBlock(c[2], c[3], 3, (1, 2, 2))
        self.bridge = ConvBlock(c[3], c[4], 3, (2, 2, 2))
        self.guide_pool = nn.MaxPool3d((1, 8, 8))
        self.guide_conv = nn.Conv3d(2, c[4], 3, 2, 1, bias=True)
        self.up4 = UpBlock(c[4], c[3], c[3], (2, 2, 2), 3)
        self.up3 = UpBlock(c[3], c[2], c[2], (1, 2, 2), 3)
        self.up2 = UpBlock(c[2], c[1], c[1], (1, 2, 2), (1, 3, 3))
        self.up1 = UpBlock(c[1], c[0], c[0], (1, 2, 2), (1, 3, 3))
        self.head = nn.Conv3d(c[0], 2, 1, bias=True)

    def forward(self, image: torch.Tensor, guide: torch.Tensor) -> torch.Tensor:
        """``(B, 1, D, H, W)``, ``(B, 2, D, H, W)`` -> logits ``(B, 2, D, H, W)`` (not softmaxed)."""
        x1 = self.down1(torch.cat([image, guide], dim=1))
        x2 = self.down2(x1)
        x3 = self.down3(x2)
        x4 = self.down4(x3)
        bridge = self.bridge(x4, add=self.guide_conv(self.guide_pool(guide)))
        return self.head(self.up1(self.up2(self.up3(self.up4(bridge, x4), x3), x2), x1))

    def kernels(self) -> list[torch.Tensor]:
        """Every convolution kernel (Conv3d and ConvTranspose3d weights), for the TF-style L2 term."""
        return [m.weight for m in self.modules() if isinstance(m, (nn.Conv3d, nn.ConvTranspose3d))]
