"""Atomic file writes: write to a temporary sibling, then ``os.replace`` onto the final name.

A crash or an error while writing never leaves a partial file under the final name, and an existing file is only
replaced once the new one is complete.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any


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


def write_text(path: str | os.PathLike[str], text: str) -> None:
    """Atomically write ``text`` (UTF-8) to ``path``."""
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


def write_json(path: str | os.PathLike[str], obj: Any) -> None:
    """Atomically write ``obj`` as indented, key-sorted JSON (newline-terminated)."""
    write_text(path, json.dumps(obj, indent=2, sort_keys=True, default=str) + "\n")
