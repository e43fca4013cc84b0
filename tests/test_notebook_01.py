"""The feature-inspection notebook: stored clean, parameterised, and runs headless with papermill."""
import re
from pathlib import Path

import nbformat
import pytest

NB = Path(__file__).resolve().parents[1] / "notebooks" / "01_feature_inspection.ipynb"


def test_stored_without_outputs_and_parameters_cell():
    nb = nbformat.read(NB, as_version=4)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert all(not c.get("outputs") and c.get("execution_count") is None for c in code)
    assert "parameters" in code[0].metadata.get("tags", [])
    for line in code[0].source.splitlines():
        assert re.fullmatch(r"\w+: \w+ = .+  # .+", line), line


def test_runs_with_papermill(tmp_path):
    papermill = pytest.importorskip("papermill")
    out = tmp_path / "out.ipynb"
    papermill.execute_notebook(str(NB), str(out), parameters=dict(n_segments=60, min_count=3),
                               kernel_name="python3", progress_bar=False)
    nb = nbformat.read(out, as_version=4)
    text = "".join(o.get("text", "") for c in nb.cells for o in c.get("outputs", []))
    assert "object mentions from 60 segments" in text
