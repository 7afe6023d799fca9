"""Training logs: CSV tables (rewritten atomically) and optional TensorBoard scalars (rank 0 only)."""

from __future__ import annotations

import csv
import io
import logging
import os
from pathlib import Path

from mois_sam2_nf.atomic import write_text

LOG = logging.getLogger(__name__)


class CsvTable:
    """An append-only table kept in memory and written whole (atomically) on :meth:`flush`.

    On creation, rows of an existing file are loaded, keeping only those with ``epoch < keep_before_epoch`` (rows of
    an interrupted epoch are dropped when a run resumes). Columns are the union of all row keys, in first-seen order.
    """

    def __init__(self, path: str | os.PathLike[str], keep_before_epoch: int = 0) -> None:
        self.path = Path(path)
        self.rows: list[dict[str, str]] = []
        if self.path.is_file() and keep_before_epoch > 0:
            with self.path.open(newline="", encoding="utf-8") as handle:
                self.rows = [r for r in csv.DictReader(handle) if int(r.get("epoch", 0)) < keep_before_epoch]

    def append(self, row: dict[str, float | int | str]) -> None:
        """Add one row (values formatted with ``str``; floats with ``repr``, i.e. exactly)."""
        self.rows.append({k: (repr(v) if isinstance(v, float) else str(v)) for k, v in row.items()})

    def flush(self) -> None:
        """Write the whole table to :attr:`path`."""
        columns: dict[str, None] = {}
        for row in self.rows:
            columns.update(dict.fromkeys(row))
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=list(columns), lineterminator="\n")
        writer.writeheader()
        writer.writerows(self.rows)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        write_text(self.path, buffer.getvalue())


class ScalarWriter:
    """TensorBoard scalars under ``log_dir`` when enabled and importable; otherwise a no-op (with one warning)."""

    def __init__(self, log_dir: str | os.PathLike[str], enabled: bool) -> None:
        self.writer = None
        if not enabled:
            return
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError:
            LOG.warning("tensorboard is not installed; TensorBoard logging is off (the CSV logs are complete)")
            return
        self.writer = SummaryWriter(log_dir=str(log_dir))

    def scalars(self, values: dict[str, float], step: int, prefix: str) -> None:
        """Log ``prefix/<name>`` for every value at ``step``."""
        if self.writer is not None:
            for name, value in values.items():
                self.writer.add_scalar(f"{prefix}/{name}", value, step)

    def close(self) -> None:
        """Flush and close the event file."""
        if self.writer is not None:
            self.writer.close()
