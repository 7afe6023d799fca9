"""Atomic file writes: write to a temporary sibling, then ``os.replace`` onto the final name.

A crash or an error while writing never leaves a partial file under the final name, and an existing file is only
replaced once the new one is complete. :func:`atomic_dir` does the same for a set of files that belong together
(all of them or none), and :func:`check_output_dir` tells before any work whether a folder can be written.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from mois_sam2_nf.errors import InputError


def _suffixes(path: Path) -> str:
    """Full multi-part suffix (``.nii.gz``, ``.csv``) so libraries that dispatch on the extension still work."""
    return "".join(path.suffixes[-2:]) if path.name.endswith(".nii.gz") else path.suffix


@contextmanager
def atomic_path(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary path next to ``path``; on success rename it onto ``path``, on error delete it.

    The temporary name keeps the extension of ``path`` (e.g. ``.nii.gz``) and starts with a dot, so globbing for
    finished files never sees it.
    """
    final = Path(path)
    final.parent.mkdir(parents=True, exist_ok=True)
    suffix = _suffixes(final)
    stem = final.name[: len(final.name) - len(suffix)] if suffix else final.name
    tmp = final.with_name(f".{stem}.tmp{os.getpid()}{suffix}")
    try:
        yield tmp
        os.replace(tmp, final)
    finally:
        if tmp.exists():
            tmp.unlink()


def check_output_dir(path: str | os.PathLike[str], what: str = "output folder") -> None:
    """Raise :class:`InputError` unless ``path`` is, or can be created as, a writable folder.

    Checked before any expensive work so that a bad output path fails at once: ``path`` must not be an existing file,
    no existing ancestor may be a file, and the nearest existing ancestor must be writable.
    """
    final = Path(path)
    if final.exists() and not final.is_dir():
        raise InputError(f"{final}: {what} exists and is not a folder")
    existing = final
    while not existing.exists():
        if existing.parent == existing:
            break
        existing = existing.parent
    if not existing.is_dir():
        raise InputError(f"{final}: {what} cannot be created, {existing} is a file")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise InputError(f"{final}: {what} is not writable ({existing} does not allow writing)")


@contextmanager
def atomic_dir(path: str | os.PathLike[str], owned: Sequence[str] = ()) -> Iterator[Path]:
    """Yield a temporary sibling folder of ``path`` to write a set of files into; publish them only on success.

    On success a new ``path`` is created by renaming the temporary folder (one atomic step); if ``path`` already is a
    folder, each written file is moved onto its final name with ``os.replace``, and the files named in ``owned``
    (the names the set can contain) that this run did not write are removed, so no stale member of an earlier set is
    left beside the new one; other files are left alone. On an error the temporary folder and everything in it are
    removed and ``path`` is untouched.
    """
    final = Path(path)
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = final.with_name(f".{final.name}.tmp{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    try:
        yield tmp
        if final.is_dir():
            written = sorted(tmp.iterdir())
            for item in written:
                os.replace(item, final / item.name)
            for name in sorted(set(owned) - {item.name for item in written}):
                (final / name).unlink(missing_ok=True)
        else:
            os.replace(tmp, final)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def write_text(path: str | os.PathLike[str], text: str) -> None:
    """Atomically write ``text`` (UTF-8) to ``path``."""
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


def write_json(path: str | os.PathLike[str], obj: Any) -> None:
    """Atomically write ``obj`` as indented, key-sorted JSON (newline-terminated)."""
    write_text(path, json.dumps(obj, indent=2, sort_keys=True, default=str) + "\n")
