"""Loading weight files into MOIS-SAM2 (and the loader that picks the rule by model type; docs/method.md, Checkpoints).

Reading, validating and saving the files, and loading into plain SAM2: :mod:`mois_sam2_nf.models.sam2.checkpoint`.

Loading rules:

- official SAM2.1 checkpoint -> plain SAM2: strict;
- official SAM2.1 checkpoint -> MOIS-SAM2: every ``memory_attention.X`` is copied to ``exemplar_attention.X``, then
  loaded with ``strict=False``; the only keys allowed to stay missing are the other MOIS-only parameters
  (``exemplar_type_enc``, ``no_exemplar_*``, ``exemplar_obj_ptr_proj.*``, ``exemplar_obj_ptr_tpos_proj.*``), and no key
  may be unexpected;
- MOIS-SAM2 checkpoint -> MOIS-SAM2: strict;
- MOIS-SAM2 checkpoint -> plain SAM2: MOIS-only keys dropped, then strict.

Every failure (missing file, truncated/corrupt file, wrong layout, key or shape mismatch) raises
:class:`~mois_sam2_nf.errors.InputError` with one line naming the file and the problem.
"""

from __future__ import annotations

import os
from pathlib import Path

from torch import nn

from mois_sam2_nf.models.mois_sam2.model import MOISSAM2Base
from mois_sam2_nf.models.sam2.checkpoint import (
    StateDict,
    is_mois_key,
    load_state_into_sam2,
    read_state_dict,
    strict_load,
)

#: prefix of the keys initialised from memory attention when an official SAM2.1 checkpoint is loaded into MOIS-SAM2
EXEMPLAR_ATTENTION_PREFIX = "exemplar_attention."
MEMORY_ATTENTION_PREFIX = "memory_attention."


def load_state_into_mois(model: MOISSAM2Base, state: StateDict, path: str | os.PathLike[str]) -> None:
    """Load a MOIS-SAM2 state dict (strict) or an official SAM2.1 one (exemplar attention from memory attention)."""
    if any(is_mois_key(k) for k in state):
        strict_load(model, state, Path(path))
        return
    initialised = dict(state)
    for key, value in state.items():
        if key.startswith(MEMORY_ATTENTION_PREFIX):
            initialised.setdefault(EXEMPLAR_ATTENTION_PREFIX + key[len(MEMORY_ATTENTION_PREFIX):], value.clone())
    allowed = frozenset(k for k in model.state_dict() if is_mois_key(k) and not k.startswith(EXEMPLAR_ATTENTION_PREFIX))
    strict_load(model, initialised, Path(path), allowed_missing=allowed)


def load_checkpoint(model: nn.Module, path: str | os.PathLike[str]) -> None:
    """Read ``path`` and load it into ``model`` following the rules of the module docstring."""
    state = read_state_dict(path)
    if isinstance(model, MOISSAM2Base):
        load_state_into_mois(model, state, path)
    else:
        load_state_into_sam2(model, state, path)
