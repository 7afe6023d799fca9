"""models/sam2: plain SAM2 on scans, and the SAM2-family building blocks MOIS-SAM2 builds on (config-driven builder,
weight files, in-memory volume predictor, memory-dtype hook, hole filling)."""

from mois_sam2_nf.models.sam2.build import build_sam2_model

__all__ = ["build_sam2_model"]
