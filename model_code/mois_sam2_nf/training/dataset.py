"""Clips of consecutive coronal slices read from the sliced layout (docs/synthetic_data.md, Slicing to 2-D).

Layout read (``root`` is e.g. ``data/processed``)::

    root/<set>/<case>/NNNNN.jpg               uint8 greyscale frames of the canonical view, with meta.json
    root/<label set>/<case>/NNNNN.png         instance ids (0 = background)

One item is a clip of ``num_frames`` consecutive frames starting at a random frame that shows at least one lesion
(no time reversal), with up to ``max_objects`` lesions drawn among those visible on the first frame. Every item is a
pure function of ``(seed, epoch, index)``, so data-loader workers and DDP ranks need no shared random state.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from mois_sam2_nf.data.slicing import META_FILE, case_dirs, frame_name, read_frame_jpg, read_mask_png
from mois_sam2_nf.errors import InputError
from mois_sam2_nf.training.augment import AugmentSettings, augment_clip, clip_transform

LOG = logging.getLogger(__name__)

#: how often a clip's augmentation is redrawn when it pushes every chosen lesion off the first frame
AUGMENT_TRIES = 3


@dataclass(frozen=True)
class Clip:
    """One training sample.

    Attributes:
        images: float32 ``(T, 3, S, S)`` in [0, 1]; the greyscale frame replicated to 3 channels.
        masks: bool ``(N, T, S, S)``: lesion ``n`` (the SAM2 "object") on each frame.
        semantic: bool ``(T, S, S)``: union of **all** lesions of each frame (MOIS-SAM2 semantic target).
        case: case id; start: first frame index in the scan; object_ids: the instance ids behind ``masks``.
    """

    images: torch.Tensor
    masks: torch.Tensor
    semantic: torch.Tensor
    case: str
    start: int
    object_ids: tuple[int, ...]

    @property
    def num_frames(self) -> int:
        """``T``."""
        return int(self.images.shape[0])

    @property
    def num_objects(self) -> int:
        """``N``."""
        return int(self.masks.shape[0])

    def to(self, device: torch.device | str) -> "Clip":
        """The same clip with its tensors on ``device``."""
        return replace(
            self, images=self.images.to(device), masks=self.masks.to(device), semantic=self.semantic.to(device)
        )


@dataclass(frozen=True)
class ClipSettings:
    """Sampling settings: frames per clip, most lesions per clip, epoch length = cases × multiplier."""

    num_frames: int = 4
    max_objects: int = 3
    multiplier: int = 5


class SlicedCaseFiles:
    """Frame files of one sliced case and the frames that show at least one lesion."""

    def __init__(self, root: Path, set_name: str, case: str) -> None:
        self.case = case
        self.image_dir, self.label_dir = case_dirs(root, set_name, case)
        if not (self.image_dir / META_FILE).is_file():
            raise InputError(f"{self.image_dir}: sliced case not found (no {META_FILE}); run `mois-sam2-nf slice`")
        self.num_frames = len(sorted(self.image_dir.glob("*.jpg")))
        self.lesion_frames = [f for f in range(self.num_frames) if read_mask_png(self._mask_path(f)).any()]

    def _mask_path(self, frame: int) -> Path:
        return self.label_dir / frame_name(frame, ".png")

    def read(self, start: int, count: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Frames ``start .. start+count-1`` as ``(float32 (T, 3, H, W) in [0, 1], uint8 (T, H, W) ids)``."""
        frames = np.stack([read_frame_jpg(self.image_dir / frame_name(f, ".jpg")) for f in range(start, start + count)])
        ids = np.stack([read_mask_png(self._mask_path(f)) for f in range(start, start + count)])
        images = torch.from_numpy(frames).float().div_(255.0).unsqueeze(1).expand(-1, 3, -1, -1).contiguous()
        return images, torch.from_numpy(ids)


class ClipDataset(torch.utils.data.Dataset):
    """Random clips from sliced cases; ``len = len(cases) × multiplier`` (item ``i`` uses case ``i % len(cases)``).

    Args:
        root: processed-data folder (``data/processed``).
        set_name: image set folder, e.g. ``imagesTr``.
        cases: case ids (a fold's ``train_set.txt`` / ``val_set.txt``).
        image_size: model input size ``S``.
        clip: clip sampling settings.
        augment: augmentation settings (use ``enabled=False`` for validation).
        seed: base seed; combine with :meth:`set_epoch` for a new draw each epoch.
    """

    def __init__(
        self,
        root: str | os.PathLike[str],
        set_name: str,
        cases: list[str],
        image_size: int,
        clip: ClipSettings,
        augment: AugmentSettings,
        seed: int,
    ) -> None:
        if not cases:
            raise InputError(f"{root}/{set_name}: the case list is empty")
        root = Path(root)
        self.clip = clip
        self.image_size = image_size
        self.seed = seed
        self.epoch = 0
        self.transform = clip_transform(augment, image_size)
        self.cases: list[SlicedCaseFiles] = []
        for case in tqdm(cases, desc=f"index {set_name}", unit="case", leave=False):
            files = SlicedCaseFiles(root, set_name, case)
            starts = self._starts(files)
            if starts:
                self.cases.append(files)
            else:
                LOG.warning("%s: no lesion on a frame that starts a %d-frame clip; case skipped", case, clip.num_frames)
        if not self.cases:
            raise InputError(f"{root}/{set_name}: no case has a lesion on a frame that can start a clip")

    def _starts(self, files: SlicedCaseFiles) -> list[int]:
        last = files.num_frames - self.clip.num_frames
        return [f for f in files.lesion_frames if f <= last]

    def set_epoch(self, epoch: int) -> None:
        """Select the random draw of ``epoch`` (call before iterating each epoch)."""
        self.epoch = epoch

    def __len__(self) -> int:
        return len(self.cases) * self.clip.multiplier

    def __getitem__(self, index: int) -> Clip:
        rng = np.random.default_rng([self.seed, self.epoch, index])
        files = self.cases[index % len(self.cases)]
        start = int(rng.choice(self._starts(files)))
        images, ids = files.read(start, self.clip.num_frames)
        visible = np.unique(ids[0].numpy())
        visible = visible[visible > 0]
        chosen = rng.permutation(visible)[: self.clip.max_objects]
        for _ in range(AUGMENT_TRIES):
            out_images, out_ids = augment_clip(images, ids, self.transform, int(rng.integers(2**31)))
            if np.isin(chosen, out_ids[0].numpy()).any():
                break
        object_ids = torch.as_tensor(chosen.astype(np.int64))
        masks = out_ids.long().unsqueeze(0) == object_ids.view(-1, 1, 1, 1)
        return Clip(
            images=out_images,
            masks=masks,
            semantic=out_ids > 0,
            case=files.case,
            start=start,
            object_ids=tuple(int(o) for o in chosen),
        )


@dataclass(frozen=True)
class ClipBatch:
    """``B`` clips of the same length trained in one step: their objects form one SAM2 object batch.

    Attributes:
        images: float32 ``(B, T, 3, S, S)`` in [0, 1].
        masks: bool ``(N, T, S, S)``: every object of every clip, clip by clip.
        semantic: bool ``(B, T, S, S)``: union of all lesions of each frame of each clip.
        object_clip: int64 ``(N,)``: index of the clip each object belongs to.
        cases, starts: per clip; object_ids: per object (the instance ids behind ``masks``).
    """

    images: torch.Tensor
    masks: torch.Tensor
    semantic: torch.Tensor
    object_clip: torch.Tensor
    cases: tuple[str, ...]
    starts: tuple[int, ...]
    object_ids: tuple[int, ...]

    @classmethod
    def from_clips(cls, clips: list[Clip]) -> "ClipBatch":
        """Stack clips of equal length and size (objects concatenated in clip order)."""
        if not clips:
            raise ValueError("a clip batch needs at least one clip")
        return cls(
            images=torch.stack([c.images for c in clips]),
            masks=torch.cat([c.masks for c in clips]),
            semantic=torch.stack([c.semantic for c in clips]),
            object_clip=torch.cat([torch.full((c.num_objects,), b, dtype=torch.long) for b, c in enumerate(clips)]),
            cases=tuple(c.case for c in clips),
            starts=tuple(c.start for c in clips),
            object_ids=tuple(o for c in clips for o in c.object_ids),
        )

    @property
    def num_clips(self) -> int:
        """``B``."""
        return int(self.images.shape[0])

    @property
    def num_frames(self) -> int:
        """``T``."""
        return int(self.images.shape[1])

    @property
    def num_objects(self) -> int:
        """``N`` (all clips together)."""
        return int(self.masks.shape[0])

    def objects_of(self, clip: int) -> list[int]:
        """Object indices (into ``masks``) of clip ``clip``."""
        return [int(n) for n in torch.nonzero(self.object_clip == clip).flatten()]

    def to(self, device: torch.device | str) -> "ClipBatch":
        """The same batch with its tensors on ``device``."""
        return replace(self, images=self.images.to(device), masks=self.masks.to(device),
                       semantic=self.semantic.to(device), object_clip=self.object_clip.to(device))


def batch_clips(items: list[Clip]) -> ClipBatch:
    """Data-loader collate function: the clips of one step as a :class:`ClipBatch`."""
    return ClipBatch.from_clips(items)
