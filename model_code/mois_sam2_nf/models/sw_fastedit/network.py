"""The SW-FastEdit network: MONAI ``DynUNet`` with 3 input channels (image, lesion guidance, background guidance)."""

from __future__ import annotations

from collections.abc import Sequence

from monai.networks.nets import DynUNet

#: DynUNet geometry of the reference (rows, cols, frames): 5 in-plane and 4 through-plane down-samplings
KERNELS: list[int] = [3] * 6
STRIDES: list[int | list[int]] = [1, 2, 2, 2, 2, [2, 2, 1]]
UPSAMPLE_KERNELS: list[int | list[int]] = [2, 2, 2, 2, [2, 2, 1]]


def build_network(filters: Sequence[int]) -> DynUNet:
    """``DynUNet`` ``(B, 3, R, C, F) -> (B, 2, R, C, F)`` logits; the reference filters give 31.0 M parameters."""
    return DynUNet(spatial_dims=3, in_channels=3, out_channels=2, kernel_size=KERNELS, strides=STRIDES,
                   upsample_kernel_size=UPSAMPLE_KERNELS, filters=list(filters), norm_name="instance",
                   res_block=True, deep_supervision=False)
