"""Shared fixtures: one `tiny` synthetic cohort per test session (generated, never downloaded)."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def tiny_cohort(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Raw layout of the `tiny` synthetic cohort (seed 0). Treat as read-only; copy it before changing files."""
    from mois_sam2_nf.data.synthetic import generate_cohort

    out = tmp_path_factory.mktemp("tiny_cohort") / "raw"
    generate_cohort("tiny", out_dir=out, seed=0)
    return out
