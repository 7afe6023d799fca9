"""Run identity and provenance: the config hash, ``run_id`` and ``manifest.json``.

Described in docs/evaluation_protocol.md, Result files.

``run_id = {model}__{mode}__{test set}__fold{f}__{config-hash8}``; the test-set token is the test-set name without
underscores (``ts1``, ``val1``) so that ``__`` stays an unambiguous separator.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from mois_sam2_nf.data.eval_sets import RUN_TOKEN, parse_eval_set
from mois_sam2_nf.provenance import git_state, package_versions

#: ``run_id``'s fields; ``test_set`` is the set's run token (``ts1``, ``val1``; :func:`parse_eval_set` reads it)
RUN_ID_PATTERN = re.compile(
    rf"^(?P<model>.+?)__(?P<mode>.+?)__(?P<test_set>{RUN_TOKEN})__fold(?P<fold>[^_]+)__(?P<hash>\w+)$"
)

#: top-level config keys left out of the hash: where data and results live, the fold/test set (run-id parts), display
HASH_EXCLUDED: tuple[str, ...] = ("results_dir", "fold", "data", "progress")



def config_hash(config: dict[str, Any]) -> str:
    """First 8 hex digits of the SHA-256 of the canonical JSON of ``config`` minus :data:`HASH_EXCLUDED` keys.

    The same protocol, click, metric and model settings (and seed) give the same hash for every fold, test set and
    data location, so runs of one configuration group together.
    """
    kept = {k: v for k, v in config.items() if k not in HASH_EXCLUDED}
    text = json.dumps(kept, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:8]


def run_id(model: str, mode: str, test_set: str, fold: int, config: dict[str, Any]) -> str:
    """``{model}__{mode}__{test set token}__fold{fold}__{config_hash(config)}``."""
    return f"{model}__{mode}__{parse_eval_set(test_set).run_token}__fold{fold}__{config_hash(config)}"


def sha256_file(path: str | os.PathLike[str] | None) -> str | None:
    """Hex SHA-256 of a file (streamed), ``None`` when ``path`` is ``None`` or not a file."""
    if path is None or not Path(path).is_file():
        return None
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def sha256_tree(folder: str | os.PathLike[str] | None) -> str | None:
    """SHA-256 over the sorted relative paths and contents of every file under ``folder`` (``None`` if absent)."""
    if folder is None or not Path(folder).is_dir():
        return None
    digest = hashlib.sha256()
    root = Path(folder)
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        digest.update(path.relative_to(root).as_posix().encode("utf-8") + b"\0")
        digest.update(path.read_bytes() + b"\0")
    return digest.hexdigest()


def build_manifest(
    *,
    run_id: str,
    command: str,
    config: dict[str, Any],
    checkpoint: str | None,
    data: dict[str, Any],
    n_cases_done: int,
) -> dict[str, Any]:
    """The ``manifest.json`` object of a run.

    Args:
        run_id: the run folder name.
        command: the command line that produced it.
        config: the fully resolved config (protocol, click, metrics, model, data, seed, ...).
        checkpoint: model checkpoint file, or folder (nnU-Net; hashed as a tree), ``None`` for checkpoint-free models.
        data: ``{root, test_set, fold, case_ids, splits_sha256, patients_csv_sha256}``.
        n_cases_done: finished cases in the run folder.
    """
    model = config.get("model", {})
    return {
        "run_id": run_id,
        "created_utc": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "command": command,
        **git_state(),
        "versions": package_versions(),
        "device": model.get("device"),
        "precision": model.get("precision"),
        "seed": config.get("seed"),
        "config": config,
        "checkpoint": {"path": checkpoint, "sha256": sha256_file(checkpoint) or sha256_tree(checkpoint)},
        "data": data,
        "n_cases_done": n_cases_done,
    }
