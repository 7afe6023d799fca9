"""Shared fixtures: one `tiny` synthetic cohort per test session (generated, never downloaded)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def tiny_cohort(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Raw layout of the `tiny` synthetic cohort (seed 0). Treat as read-only; copy it before changing files."""
    from mois_sam2_nf.data.synthetic import generate_cohort

    out = tmp_path_factory.mktemp("tiny_cohort") / "raw"
    generate_cohort("tiny", out_dir=out, seed=0)
    return out


@pytest.fixture
def one_torch_thread() -> Iterator[None]:
    """Run a model test on one torch thread (CI has 2 cores; restores the previous setting)."""
    import torch

    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)
