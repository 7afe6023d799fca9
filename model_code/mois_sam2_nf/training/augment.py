"""Clip augmentation, identical for every frame of a clip (torchvision ``transforms.v2``).

Order (docs/method.md, Augmentation): horizontal flip (p 0.5), random affine (rotation ±degrees, shear ±shear),
square resize to the model input size without keeping the aspect ratio (bicubic + antialias for the image, nearest
for masks), clamp to [0, 1].
No intensity normalisation. One transform call draws one set of parameters and applies it to the whole clip.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torchvision import tv_tensors
from torchvision.transforms import v2


@dataclass(frozen=True)
class AugmentSettings:
    """Augmentation strengths; ``enabled=False`` keeps only the square resize (validation)."""

    enabled: bool = True
    hflip_prob: float = 0.5
    degrees: float = 10.0
    shear: float = 5.0


def clip_transform(settings: AugmentSettings, image_size: int) -> v2.Transform:
    """The v2 pipeline for ``(video, masks)`` pairs resized to ``image_size × image_size``."""
    steps: list[v2.Transform] = []
    if settings.enabled:
        steps += [
            v2.RandomHorizontalFlip(p=settings.hflip_prob),
            v2.RandomAffine(
                degrees=settings.degrees,
                shear=settings.shear,
                interpolation=v2.InterpolationMode.BILINEAR,
            ),
        ]
    steps.append(v2.Resize((image_size, image_size), interpolation=v2.InterpolationMode.BICUBIC, antialias=True))
    return v2.Compose(steps)


def augment_clip(
    frames: torch.Tensor, masks: torch.Tensor, transform: v2.Transform, seed: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """Apply one draw of ``transform`` to a clip.

    Args:
        frames: float32 ``(T, 3, H, W)`` in [0, 1] (rows, cols as in the canonical view).
        masks: uint8 ``(T, H, W)`` instance-id maps of the same frames.
        transform: from :func:`clip_transform`.
        seed: seeds torch's generator for this draw only (the global RNG state is restored afterwards).
    Returns:
        ``(frames (T, 3, S, S) float32 in [0, 1], masks (T, S, S) uint8)``.
    """
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        video, ids = transform(tv_tensors.Video(frames), tv_tensors.Mask(masks))
    return video.as_subclass(torch.Tensor).clamp_(0.0, 1.0), ids.as_subclass(torch.Tensor)
