"""The package's layers import downwards only (docs/architecture.md, Layers).

Static: every ``import`` / ``from ... import`` of a ``mois_sam2_nf`` module in the package source is checked against
the layer order, so a new upward import (e.g. a model adapter importing the evaluation) fails here.
"""

from __future__ import annotations

import ast
from pathlib import Path

import mois_sam2_nf

PACKAGE = Path(mois_sam2_nf.__file__).parent

#: top-level unit of the package -> layer rank (low = bottom); a unit may import itself and lower ranks only
RANKS: dict[str, int] = {
    "errors": 0,
    "__init__": 1, "atomic": 1, "devices": 1, "provenance": 1, "hydra_compose": 1,
    "data": 2,
    "segmenters": 3,
    "models": 4,
    "training": 5,
    "segment_scan": 6, "serving": 6,
    "evaluation": 7,
    "analysis": 8,
    "cli": 9,
}


def _unit(module: str) -> str:
    """``mois_sam2_nf.models.sam2.adapter`` -> ``models``; the package itself -> ``__init__``."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def _imports(path: Path) -> list[tuple[int, str]]:
    """``(line, imported mois_sam2_nf module)`` of one source file."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.ImportFrom) and node.level == 0 and (node.module or "").startswith("mois_sam2_nf"):
            found.append((node.lineno, node.module))
        elif isinstance(node, ast.Import):
            found.extend((node.lineno, alias.name) for alias in node.names if alias.name.startswith("mois_sam2_nf"))
    return found


def test_every_unit_has_a_layer() -> None:
    units = {path.relative_to(PACKAGE).parts[0].removesuffix(".py") for path in PACKAGE.rglob("*.py")}
    assert units <= set(RANKS), sorted(units - set(RANKS))


def test_imports_point_downwards_only() -> None:
    upward = []
    for path in sorted(PACKAGE.rglob("*.py")):
        unit = path.relative_to(PACKAGE).parts[0].removesuffix(".py")
        for line, module in _imports(path):
            target = _unit(module)
            if target != unit and RANKS[target] >= RANKS[unit]:
                upward.append(f"{path.relative_to(PACKAGE)}:{line} {unit} -> {target}")
    assert upward == []


def test_plain_sam2_does_not_import_mois_sam2() -> None:
    """MOIS-SAM2 builds on the SAM2 building blocks (builder, weight files, volume predictor), not the other way."""
    imports = [f"{path.name}:{line} {module}" for path in sorted((PACKAGE / "models" / "sam2").rglob("*.py"))
               for line, module in _imports(path) if module.startswith("mois_sam2_nf.models.mois_sam2")]
    assert imports == []
