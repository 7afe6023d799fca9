"""Provenance of results and weights: the git state of this repository and the versions of the packages used.

Recorded in evaluation manifests (``manifest.json``) and in the ``meta.json`` of trained baselines.
"""

from __future__ import annotations

import importlib.metadata
import platform
import subprocess
from pathlib import Path
from typing import Any

#: manifest key -> distribution name whose version is recorded
VERSIONED_PACKAGES: dict[str, str] = {
    "mois_sam2_nf": "mois-sam2-nf",
    "torch": "torch",
    "sam2": "sam2",
    "monai": "monai",
    "numpy": "numpy",
    "scipy": "scipy",
    "nibabel": "nibabel",
    "cc3d": "connected-components-3d",
    "nnunetv2": "nnunetv2",
    "onnxruntime": "onnxruntime",
}


def git_state() -> dict[str, Any]:
    """``{"git_commit": sha or None, "git_dirty": bool or None}`` of the repository holding this package."""
    here = Path(__file__).resolve().parent

    def git(*args: str) -> str | None:
        try:
            done = subprocess.run(["git", "-C", str(here), *args], capture_output=True, text=True, timeout=30)
        except (OSError, subprocess.SubprocessError):
            return None
        return done.stdout if done.returncode == 0 else None

    commit = git("rev-parse", "HEAD")
    if commit is None:
        return {"git_commit": None, "git_dirty": None}
    status = git("status", "--porcelain", "--untracked-files=no")
    return {"git_commit": commit.strip(), "git_dirty": None if status is None else bool(status.strip())}


def package_versions() -> dict[str, str | None]:
    """Versions of python and of :data:`VERSIONED_PACKAGES` (``None`` when a package is not installed)."""
    versions: dict[str, str | None] = {"python": platform.python_version()}
    for key, distribution in VERSIONED_PACKAGES.items():
        try:
            versions[key] = importlib.metadata.version(distribution)
        except importlib.metadata.PackageNotFoundError:
            versions[key] = None
    return versions
