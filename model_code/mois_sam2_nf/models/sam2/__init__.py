"""models/sam2: plain SAM2 on scans (builder, configs, volume predictor).

``build_sam2_model`` is imported lazily: the builder uses the MOIS-SAM2 package, whose model imports this package's
volume predictor, so an eager import here would be circular.
"""

from typing import Any

__all__ = ["build_sam2_model"]


def __getattr__(name: str) -> Any:
    if name == "build_sam2_model":
        from mois_sam2_nf.models.sam2.build import build_sam2_model

        return build_sam2_model
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
