"""``results/result_analysis.ipynb`` executes (nbclient) on a fabricated results folder and shows tables and figures."""

from __future__ import annotations

from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient
from test_analysis_fixtures import build_results

NOTEBOOK = Path(__file__).resolve().parents[1] / "results" / "result_analysis.ipynb"


def test_result_analysis_notebook_runs_on_a_tiny_results_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fab = build_results(tmp_path, sweep=True, n_cases=3)
    monkeypatch.setenv("MOIS_SAM2_NF_RESULTS", str(fab.results))
    monkeypatch.delenv("MOIS_SAM2_NF_DATA_ROOT", raising=False)
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    assert all(not cell.get("outputs") for cell in notebook.cells if cell.cell_type == "code")  # stored clean
    resources = {"metadata": {"path": str(NOTEBOOK.parent)}}
    NotebookClient(notebook, timeout=300, kernel_name="python3", resources=resources).execute()
    outputs = [out for cell in notebook.cells if cell.cell_type == "code" for out in cell.outputs]
    assert not [out for out in outputs if out.output_type == "error"]
    images = [out for out in outputs if out.output_type == "display_data" and "image/png" in out.data]
    assert len(images) == 4  # domain shift, prompted lesions, interactions, overlays
    html = "".join(out.data.get("text/html", "") for out in outputs if out.output_type == "execute_result")
    assert "mois_sam2__lesion_wise_corrective__ts1__fold1__abcd1234" in html  # runs table
    assert "± " in html  # benchmark table
    assert "p_bonferroni" in html  # statistics table
    assert not (fab.results / "report.md").exists()  # the notebook only reads
