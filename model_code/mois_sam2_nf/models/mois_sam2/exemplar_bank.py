"""Exemplar records and the per-scan exemplar bank (docs/method.md, Exemplar bank).

An *exemplar* is one lesion on one slice, summarised by what SAM2's memory encoder produced for it (spatial memory
features + their position encoding) and the lesion's object pointer. The bank keeps exemplars in insertion order under
the keys ``"{obj_id}_{frame}_prompted"`` / ``"{obj_id}_{frame}_nonprompted"``; re-adding a key (a re-click on the
same lesion and slice) replaces the value but keeps the entry's position. Selection takes prompted exemplars first,
in insertion order, then fills the remaining slots with non-prompted ones.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

import torch


def exemplar_key(obj_id: int, frame_idx: int, is_prompted: bool) -> str:
    """Bank key of the exemplar of object ``obj_id`` on frame ``frame_idx``."""
    return f"{obj_id}_{frame_idx}_{'prompted' if is_prompted else 'nonprompted'}"


@dataclass(frozen=True)
class Exemplar:
    """One lesion on one slice.

    Attributes:
        obj_id: object (lesion) id it was created for.
        frame_idx: index of its slice (frame) in the scan.
        is_prompted: True if the slice was clicked by the user (memory re-encoded from the click mask), False if the
            mask came from propagation.
        maskmem_features: memory-encoder features ``(1, mem_dim, h, w)`` -- ``(1, 64, 64, 64)`` at image size 1024;
            stored as bfloat16 like sam2's video predictor does.
        maskmem_pos_enc: position encoding of those features (last level), ``(1, mem_dim, h, w)``.
        obj_ptr: SAM2 object pointer of the lesion on that slice, ``(1, hidden_dim)`` = ``(1, 256)``.
    """

    obj_id: int
    frame_idx: int
    is_prompted: bool
    maskmem_features: torch.Tensor
    maskmem_pos_enc: torch.Tensor
    obj_ptr: torch.Tensor

    @property
    def key(self) -> str:
        """Bank key (see :func:`exemplar_key`)."""
        return exemplar_key(self.obj_id, self.frame_idx, self.is_prompted)

    def to(self, device: torch.device | str) -> Exemplar:
        """Copy with all tensors on ``device``."""
        return Exemplar(self.obj_id, self.frame_idx, self.is_prompted, self.maskmem_features.to(device),
                        self.maskmem_pos_enc.to(device), self.obj_ptr.to(device))


def select_exemplars(exemplars: Sequence[Exemplar], max_count: int, only_prompted: bool = False) -> list[Exemplar]:
    """Exemplars used for one semantic call (docs/method.md, Exemplar bank).

    Prompted exemplars in their given order up to ``max_count``; remaining slots are filled with non-prompted ones in
    their given order unless ``only_prompted``. Applying it to its own result returns the same list.
    """
    if max_count < 0:
        raise ValueError(f"max_count must be >= 0, got {max_count}")
    chosen = [e for e in exemplars if e.is_prompted][:max_count]
    if not only_prompted:
        chosen += [e for e in exemplars if not e.is_prompted][: max_count - len(chosen)]
    return chosen


@dataclass
class ExemplarBank:
    """Insertion-ordered store of exemplars for one scan (or one training clip).

    Attributes:
        max_size: optional cap on the number of stored exemplars. When the bank is full a *new* key is not stored
            (``add`` returns False), so the earliest exemplars are kept; replacing an existing key is always allowed.
            ``None`` = unlimited.
    """

    max_size: int | None = None
    _entries: dict[str, Exemplar] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        if self.max_size is not None and self.max_size < 0:
            raise ValueError(f"max_size must be >= 0 or None, got {self.max_size}")

    def add(self, exemplar: Exemplar) -> bool:
        """Store ``exemplar`` under its key; an existing key keeps its position. Returns False if the cap refused it."""
        key = exemplar.key
        if key not in self._entries and self.max_size is not None and len(self._entries) >= self.max_size:
            return False
        self._entries[key] = exemplar
        return True

    def select(self, max_count: int, only_prompted: bool = False) -> list[Exemplar]:
        """Exemplars for one semantic call: prompted first, then non-prompted (:func:`select_exemplars`)."""
        return select_exemplars(list(self._entries.values()), max_count, only_prompted)

    def remove_object(self, obj_id: int) -> None:
        """Drop every exemplar of object ``obj_id``."""
        self._entries = {k: e for k, e in self._entries.items() if e.obj_id != obj_id}

    def clear(self) -> None:
        """Remove all exemplars."""
        self._entries.clear()

    def keys(self) -> list[str]:
        """Keys in insertion order."""
        return list(self._entries)

    def __getitem__(self, key: str) -> Exemplar:
        return self._entries[key]

    def __contains__(self, key: object) -> bool:
        return key in self._entries

    def __len__(self) -> int:
        return len(self._entries)

    def __iter__(self) -> Iterator[Exemplar]:
        """Exemplars in insertion order."""
        return iter(list(self._entries.values()))
