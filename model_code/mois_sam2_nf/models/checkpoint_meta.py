"""Inference metadata of SAM2 / MOIS-SAM2 weight files: what a reader needs to run the weights as they were trained.

A weights file is ``torch.save({"model": state_dict, "meta": {...}})``; ``meta`` holds

- ``family`` (str): ``"sam2"`` or ``"mois_sam2"``, the model the weights were trained as;
- ``config`` (str): model config name of that family (e.g. ``"mois_sam2_demo"``) or a YAML path;
- ``image_size`` (int): model input size in pixels (the config's, or the training's ``model.params.image_size``);
- ``imagenet_norm`` (bool): whether frames were ImageNet-normalised after scaling to [0, 1].

Writers: the trainer's checkpoints and ``model_weights/export_sam2_model_weights.py``. Readers: the ``sam2`` /
``mois_sam2`` adapters (so ``evaluate``, ``segment`` and the MONAI Label app), through :func:`inference_settings`.
Files without ``meta`` (official SAM2.1 checkpoints, the released MOIS-SAM2 checkpoint) still load; their readers
need a config and use the adapter's documented normalisation default.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, fields
from pathlib import Path

from mois_sam2_nf.errors import InputError
from mois_sam2_nf.models.mois_sam2.build import MOIS_CONFIG_DIR
from mois_sam2_nf.models.sam2.build import load_model_config, resolve_config
from mois_sam2_nf.models.sam2.checkpoint import read_payload
from mois_sam2_nf.models.sam2.build import SAM2_CONFIG_DIR

#: top-level key of the metadata in a weights file
META_KEY = "meta"
#: model families and the folder their config names are looked up in
CONFIG_DIRS: dict[str, Path] = {"sam2": SAM2_CONFIG_DIR, "mois_sam2": MOIS_CONFIG_DIR}


@dataclass(frozen=True)
class CheckpointMeta:
    """Inference metadata of one weights file (module docstring); validated on construction.

    Raises:
        InputError: a field of the wrong type or value (the message names the field; :meth:`from_dict` adds the file).
    """

    family: str
    config: str
    image_size: int
    imagenet_norm: bool

    def __post_init__(self) -> None:
        config_dir(self.family)  # raises for an unknown family
        if not isinstance(self.config, str) or not self.config:
            raise InputError(f"config={self.config!r}: expected a non-empty config name or YAML path")
        if isinstance(self.image_size, bool) or not isinstance(self.image_size, int) or self.image_size < 1:
            raise InputError(f"image_size={self.image_size!r}: expected a positive integer")
        if not isinstance(self.imagenet_norm, bool):
            raise InputError(f"imagenet_norm={self.imagenet_norm!r}: expected true or false")

    def to_dict(self) -> dict[str, str | int | bool]:
        """``{"family", "config", "image_size", "imagenet_norm"}`` (plain values, weights-only loadable)."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: object, source: str | os.PathLike[str]) -> CheckpointMeta:
        """Validate ``data`` (the ``meta`` entry of ``source``); :class:`InputError` naming ``source`` if invalid."""
        names = {f.name for f in fields(cls)}
        if not isinstance(data, Mapping) or set(data) != names:
            keys = sorted(map(str, data)) if isinstance(data, Mapping) else type(data).__name__
            raise InputError(f"{source}: checkpoint meta must have exactly the keys {sorted(names)} (got {keys})")
        try:
            return cls(**{name: data[name] for name in names})
        except InputError as error:
            raise InputError(f"{source}: checkpoint meta: {error}") from None

    def check_agrees(self, source: str | os.PathLike[str], **given: object) -> None:
        """Refuse settings that contradict this metadata; ``None`` values (not given) are skipped.

        A given ``config`` agrees when it names the same YAML file as the recorded one (``"sam2_demo"`` and
        ``"sam2_demo.yaml"`` agree).

        Raises:
            InputError: one line naming ``source`` and the first conflicting key.
        """
        for key, value in given.items():
            recorded = getattr(self, key)
            if value is None:
                continue
            same = (_config_file(str(value), self.family) == _config_file(self.config, self.family)
                    if key == "config" else value == recorded)
            if not same:
                raise InputError(f"{source}: {key}={value!r} contradicts the checkpoint's metadata "
                                 f"({key}={recorded!r}); leave {key} unset to use the checkpoint's")


def config_dir(family: str) -> Path:
    """Folder of ``family``'s config names; :class:`InputError` for an unknown family."""
    if not isinstance(family, str) or family not in CONFIG_DIRS:
        raise InputError(f"family={family!r}: expected one of {', '.join(CONFIG_DIRS)}")
    return CONFIG_DIRS[family]


def _config_file(config: str, family: str) -> Path | str:
    """The YAML file ``config`` names in ``family``'s config folder, or ``config`` itself if it names none."""
    try:
        return resolve_config(config, config_dir(family)).resolve()
    except InputError:
        return config


def weights_payload(state: Mapping[str, object], meta: CheckpointMeta) -> dict[str, object]:
    """``{"model": state, "meta": meta.to_dict()}``: the layout of a weights file (``state``: name -> CPU tensor)."""
    return {"model": dict(state), META_KEY: meta.to_dict()}


def meta_of_payload(payload: Mapping[str, object], source: str | os.PathLike[str]) -> CheckpointMeta | None:
    """The validated ``meta`` entry of a loaded weights file, ``None`` when it has none."""
    return CheckpointMeta.from_dict(payload[META_KEY], source) if META_KEY in payload else None


def read(path: str | os.PathLike[str]) -> CheckpointMeta | None:
    """Read the metadata of the weights file ``path`` (``None`` for files without it, e.g. official SAM2.1).

    Raises:
        InputError: missing or unreadable file, or invalid metadata (one line naming the file).
    """
    return meta_of_payload(read_payload(path), path)


def config_image_size(family: str, config: str, overrides: Sequence[str] = ()) -> int:
    """``model.image_size`` of ``family``'s config ``config`` after Hydra-style ``overrides`` (``++model.x=v``)."""
    return int(load_model_config(config, config_dir(family), overrides).model.image_size)


@dataclass(frozen=True)
class InferenceSettings:
    """What a SAM2-family adapter builds and runs.

    Attributes:
        config: model config name or YAML path.
        imagenet_norm: ImageNet-normalise the frames.
        image_size: model input size to set (``None`` = the config's own).
    """

    config: str
    imagenet_norm: bool
    image_size: int | None

    @property
    def overrides(self) -> list[str]:
        """Model-config overrides for the builder (the image size of the weights, when known)."""
        return [] if self.image_size is None else [f"++model.image_size={self.image_size}"]


def inference_settings(
    family: str,
    checkpoint: str | None,
    config: str | None,
    imagenet_norm: bool | None,
    default_imagenet_norm: bool,
) -> InferenceSettings:
    """Settings for running ``checkpoint`` as a ``family`` model; ``None`` arguments were not given by the user.

    With metadata: ``config`` (when the weights are of the same family), ``imagenet_norm`` and the image size come
    from the checkpoint, and a given value that contradicts them is refused. Weights of the other family (a MOIS-SAM2
    checkpoint run as plain SAM2) need a ``config`` of ``family``. Without metadata (or without a checkpoint):
    ``config`` is required and ``imagenet_norm`` defaults to ``default_imagenet_norm``.

    Raises:
        InputError: unreadable checkpoint or metadata, a contradiction, or no config to be found (one line).
    """
    meta = read(checkpoint) if checkpoint is not None else None
    if meta is None or checkpoint is None:  # no metadata (a missing checkpoint has none)
        if config is None:
            if checkpoint:
                raise InputError(f"{checkpoint}: checkpoint has no inference metadata; give the {family} model config")
            raise InputError(f"no checkpoint given; give the {family} weights (e.g. "
                             f"model_weights/demo/{family}_demo.pt), or a {family} model config for random weights")
        return InferenceSettings(config, default_imagenet_norm if imagenet_norm is None else imagenet_norm, None)
    meta.check_agrees(checkpoint, imagenet_norm=imagenet_norm)
    if meta.family == family:
        meta.check_agrees(checkpoint, config=config)
        config = meta.config
    elif config is None:
        raise InputError(f"{checkpoint}: weights of a {meta.family} model (config {meta.config}); give the "
                         f"{family} model config to run them as {family}")
    return InferenceSettings(config, meta.imagenet_norm, meta.image_size)
