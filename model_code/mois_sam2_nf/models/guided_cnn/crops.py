"""Training crops of the click-guided CNN baselines, built from MONAI transforms over a ``CacheDataset``.

Each scan of the fold is loaded and placed on the working grid once (:func:`preprocessing`, cached by
``monai.data.CacheDataset``):

:class:`LoadNiftid` (MONAI ``LoadImage``, nibabel) -> ``EnsureChannelFirstd`` -> same-grid check of image and label
-> ``Orientationd`` to the canonical view (rows S->I, cols R->L, frames P->A) -> ``Spacingd`` to ``grid.spacing`` when
set (bilinear with border padding for the image, nearest with zero padding for the label) -> label ``> 0`` as
``uint8`` -> ``NormalizeIntensityd(nonzero=True)`` -> ``DivisiblePadd(grid.divisor, method="end")`` ->
``SpatialPadd(crop)`` (symmetric, for scans smaller than a crop).

The image and label this gives are the ones :func:`~mois_sam2_nf.models.guided_cnn.grid.working_volume` and
:func:`~mois_sam2_nf.models.guided_cnn.grid.working_label` give the adapters at inference (same MONAI resampling and
normalisation; tested). Each crop (:class:`CropSampler`) then draws a scan uniformly and applies the random part
(:func:`augmentation`): ``RandCropByPosNegLabeld`` (``pos_fraction`` of the crops centred on a lesion voxel, the
rest on a background voxel, padding included) and one ``RandFlipd`` per axis with ``flip_prob``.

Kept from the former per-crop sampler: the cases (training cases of the fold; validation cases, or the training cases
when the fold has none), the uniform choice of the case per crop drawn from a ``numpy`` generator seeded with the
sampler's seed, the working grid, the crop size and padding, the positive/negative ratio, the per-axis flips, the
``Sample`` handed to the models' click simulation (``(1, r, c, f)`` float32 image and binary label), seeds ``seed`` for
training and ``seed + 1`` for validation crops, reseeding on resume.

Changed: scans are read once per run instead of once per crop (memory: one float32 image and one uint8 label per
cached scan, see ``training.cache_rate``); files are read by MONAI's nibabel reader, so the checks are those of
:class:`LoadNiftid` (a readable file) and :func:`_check_pair` (same shape and affine, finite image) rather than of
:func:`mois_sam2_nf.data.io.load_nifti`;
crop centres and flips come from the MONAI transforms' own random states (seeded from the sampler's seed), so a seed
draws other crops than before (same distribution).
"""

from __future__ import annotations

from collections.abc import Hashable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from monai.data import CacheDataset, NibabelReader
from monai.transforms import (
    Compose,
    DivisiblePadd,
    EnsureChannelFirstd,
    Lambda,
    Lambdad,
    LoadImage,
    MapTransform,
    NormalizeIntensityd,
    Orientationd,
    RandCropByPosNegLabeld,
    RandFlipd,
    Spacingd,
    SpatialPadd,
)
from monai.utils import convert_to_tensor

from mois_sam2_nf.data.io import AFFINE_TOLERANCE_MM
from mois_sam2_nf.data.layout import CaseFiles
from mois_sam2_nf.data.view import CANONICAL_CODES
from mois_sam2_nf.errors import InputError
from mois_sam2_nf.models.guided_cnn.config import GridConfig, TrainingConfig

IMAGE, LABEL = "image", "label"
KEYS = (IMAGE, LABEL)


@dataclass
class Sample:
    """One training crop on the working grid: ``image`` and binary ``label``, both ``(1, r, c, f)`` float32."""

    image: torch.Tensor
    label: torch.Tensor


def _check_pair(data: Mapping[Hashable, Any]) -> Mapping[Hashable, Any]:
    """Refuse a label on another grid than its image, or an image with NaN / infinite values (one line each)."""
    image, label = data[IMAGE], data[LABEL]
    image_file, label_file = image.meta["filename_or_obj"], label.meta["filename_or_obj"]
    if image.shape != label.shape:
        raise InputError(f"{label_file}: shape {tuple(label.shape[1:])} does not match image {image_file} shape "
                         f"{tuple(image.shape[1:])}")
    difference = float((image.affine - label.affine).abs().max())
    if difference > AFFINE_TOLERANCE_MM:
        raise InputError(f"{label_file}: affine differs from image {image_file} by {difference:.3g} mm")
    if not torch.isfinite(image.as_tensor()).all():
        raise InputError(f"{image_file}: contains NaN or infinite values")
    return data


class LoadNiftid(MapTransform):
    """Read the ``image`` and ``label`` files into ``MetaTensor`` arrays (MONAI ``LoadImage`` with its nibabel reader).

    A file that cannot be read (missing, not NIfTI, truncated, corrupt) is refused with one :class:`InputError` line
    ``<file>: unreadable NIfTI file (<error type>: <nibabel's message>)``.
    """

    def __init__(self) -> None:
        super().__init__(KEYS)
        self.reader = NibabelReader()
        self.loader = LoadImage(reader=self.reader, image_only=True)

    def __call__(self, data: Mapping[Hashable, Any]) -> dict[Hashable, Any]:
        loaded = dict(data)
        for key in self.key_iterator(loaded):
            try:
                loaded[key] = self.loader(loaded[key], reader=self.reader)
            except Exception as err:  # nibabel raises several types (ImageFileError, EOFError, OSError, zlib.error)
                problem = f"{type(err).__name__}: {err}".splitlines()[0]
                raise InputError(f"{loaded[key]}: unreadable NIfTI file ({problem})") from None
        return loaded


@contextmanager
def _input_errors() -> Iterator[None]:
    """Re-raise an :class:`InputError` that MONAI wrapped in ``RuntimeError("applying transform ...")``."""
    try:
        yield
    except RuntimeError as err:
        cause: BaseException | None = err
        while cause is not None and not isinstance(cause, InputError):
            cause = cause.__cause__
        if cause is None:
            raise
        raise cause from None


def _binary(label: torch.Tensor) -> torch.Tensor:
    return (label > 0).to(torch.uint8)


def preprocessing(grid: GridConfig, crop: Sequence[int]) -> Compose:
    """Deterministic part (cached): files -> ``{"image": (1, R, C, F) float32, "label": (1, R, C, F) uint8}``.

    ``R, C, F`` are the working shape padded to multiples of ``grid.divisor`` and to at least ``crop``.
    """
    steps: list[Any] = [
        LoadNiftid(),
        EnsureChannelFirstd(keys=KEYS, channel_dim="no_channel"),
        Lambda(func=_check_pair),
        Orientationd(keys=KEYS, axcodes="".join(CANONICAL_CODES), labels=None),
    ]
    if grid.spacing is not None:
        steps.append(Spacingd(keys=KEYS, pixdim=grid.spacing, mode=("bilinear", "nearest"),
                              padding_mode=("border", "zeros")))
    steps += [
        Lambdad(keys=LABEL, func=_binary),
        NormalizeIntensityd(keys=IMAGE, nonzero=True),
        DivisiblePadd(keys=KEYS, k=grid.divisor, method="end"),
        SpatialPadd(keys=KEYS, spatial_size=crop),
    ]
    return Compose(steps)


def augmentation(training: TrainingConfig, seed: int) -> Compose:
    """Random part, seeded: a ``crop``-sized crop (``pos_fraction`` on lesion voxels) and per-axis flips."""
    augment = Compose([
        RandCropByPosNegLabeld(keys=KEYS, label_key=LABEL, spatial_size=training.crop, pos=training.pos_fraction,
                               neg=1.0 - training.pos_fraction, num_samples=1, allow_smaller=True),
        *(RandFlipd(keys=KEYS, prob=training.flip_prob, spatial_axis=axis) for axis in range(3)),
    ])
    augment.set_random_state(seed=seed)
    return augment


def case_dataset(cases: Sequence[CaseFiles], grid: GridConfig, training: TrainingConfig) -> CacheDataset:
    """The scans of ``cases`` on the working grid, each loaded once (``training.cache_rate`` of them kept)."""
    if not cases:
        raise InputError("no training cases in this fold")
    unlabelled = [case.image for case in cases if case.label is None]
    if unlabelled:
        raise InputError(f"{unlabelled[0]}: no label file (training needs one per scan)")
    data = [{IMAGE: str(case.image), LABEL: str(case.label)} for case in cases]
    with _input_errors():
        return CacheDataset(data, transform=preprocessing(grid, training.crop), cache_rate=training.cache_rate,
                            num_workers=1, copy_cache=False, progress=True)


class CropSampler:
    """Random crops of the scans of a :func:`case_dataset`.

    Args:
        dataset: the cached scans (may be shared by several samplers).
        training: ``crop``, ``pos_fraction``, ``flip_prob``.
        seed: seeds the case choice, the crops and the flips.
    """

    def __init__(self, dataset: CacheDataset, training: TrainingConfig, seed: int) -> None:
        self.dataset = dataset
        self.rng = np.random.default_rng(seed)
        self.augment = augmentation(training, seed)

    def sample(self) -> Sample:
        """One crop of a scan drawn uniformly: image and label ``(1, crop_r, crop_c, crop_f)`` float32."""
        with _input_errors():
            crop = self.augment(self.dataset[int(self.rng.integers(len(self.dataset)))])[0]
        image, label = (convert_to_tensor(crop[key], track_meta=False) for key in KEYS)
        return Sample(image.float().clone(), label.float())
