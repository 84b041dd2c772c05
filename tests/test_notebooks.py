"""The notebooks run end to end on a small demo home built through the CLI, as a user would
after `make demo`, and are stored as jupytext percent files without outputs."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import jupytext
import nbformat
import pytest
from nbclient import NotebookClient

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = ROOT / "notebooks"
# name -> plots it draws at least
NAMES = {
    "01_explore_the_crm": 3,
    "02_explain_leads": 4,
    "03_rep_performance": 1,
    "04_retrain_and_promote": 1,
}
EMAIL = re.compile(r"[\w.+-]+@[\w-]+(\.[\w-]+)*\.[A-Za-z]{2,}")
DECISION = re.compile(r"leadlens-conversion: v\d+ (is now @champion|NOT promoted)")


def _env(home: Path) -> dict[str, str]:
    env = dict(os.environ)
    env["LEADLENS_HOME"] = str(home)
    for name in ("MLFLOW_TRACKING_URI", "LEADLENS_CONFIG"):
        env.pop(name, None)
    return env


def _leadlens(env: dict[str, str], cwd: Path, *args: str) -> None:
    proc = subprocess.run([sys.executable, "-m", "leadlens", *args], env=env, cwd=cwd,
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, (
        f"leadlens {' '.join(args)} exited {proc.returncode}\n{proc.stdout}\n{proc.stderr}")


@pytest.fixture(scope="module")
def demo_home(tmp_path_factory) -> Path:
    """A home like `make demo` leaves, on a smaller CRM: simulated, ingested, trained,
    promoted, all through the CLI."""
    work = tmp_path_factory.mktemp("notebook-demo")
    home, crm = work / "home", work / "crm"
    env = _env(home)
    _leadlens(env, work, "simulate", "--out", str(crm), "--leads", "8000")
    _leadlens(env, work, "ingest", "--leads", str(crm / "leads.csv"),
              "--activities", str(crm / "activities.csv"), "--reps", str(crm / "reps.csv"))
    _leadlens(env, work, "train")
    _leadlens(env, work, "promote")
    return home


def _execute(nb: nbformat.NotebookNode, cwd: Path) -> None:
    """Run every cell in a fresh `python3` kernel; a failing cell raises CellExecutionError
    with its traceback."""
    NotebookClient(nb, timeout=600, kernel_name="python3",
                   resources={"metadata": {"path": str(cwd)}}).execute()


def _outputs(nb: nbformat.NotebookNode) -> list[dict]:
    return [o for cell in nb.cells if cell.cell_type == "code" for o in cell.get("outputs", [])]


def _text(output: dict) -> str:
    if output.get("output_type") == "stream":
        return output.get("text", "")
    data = output.get("data", {})
    return "\n".join(str(data[k]) for k in ("text/plain", "text/html") if k in data)


@pytest.fixture
def kernel_env(monkeypatch):
    """The environment the kernel inherits: no shared tracking server, no other config, and
    matplotlib's inline backend (an inherited MPLBACKEND=Agg would draw nothing)."""
    for name in ("MLFLOW_TRACKING_URI", "LEADLENS_CONFIG", "MPLBACKEND"):
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


def test_the_kernel_is_this_interpreter(kernel_env, tmp_path):
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("import sys\nprint(sys.prefix)")])
    _execute(nb, tmp_path)
    assert _text(_outputs(nb)[0]).strip() == sys.prefix


@pytest.mark.slow
@pytest.mark.parametrize("name", list(NAMES))
def test_notebook_runs_on_the_demo_home(name, demo_home, kernel_env, tmp_path):
    kernel_env.setenv("LEADLENS_HOME", str(demo_home))
    nb = jupytext.read(NOTEBOOKS / f"{name}.py")
    _execute(nb, tmp_path)

    outputs = _outputs(nb)
    images = [o for o in outputs if "image/png" in o.get("data", {})]
    assert len(images) >= NAMES[name], f"{name} drew {len(images)} plots"
    text = "\n".join(_text(o) for o in outputs)
    assert not EMAIL.search(text), f"{name} printed something like an email address"
    if name == "04_retrain_and_promote":
        assert DECISION.search(text), "the promotion decision was not printed"
    assert list(tmp_path.iterdir()) == [], "a notebook wrote to its working folder"


def test_notebooks_are_stored_as_percent_scripts_without_outputs():
    assert sorted(p.stem for p in NOTEBOOKS.glob("*.py")) == sorted(NAMES), \
        "every notebook is run by this test: add new ones to NAMES"
    stored = [p for p in NOTEBOOKS.rglob("*.ipynb") if ".ipynb_checkpoints" not in p.parts]
    assert stored == [], (
        f"notebooks are kept as jupytext .py files (outputs never stored); remove {stored} or "
        "write converted copies outside notebooks/ (see notebooks/README.md)")
    for name in NAMES:
        text = (NOTEBOOKS / f"{name}.py").read_text(encoding="utf-8")
        assert text.startswith("# ---\n# jupyter:\n#   jupytext:\n"), f"{name}: no jupytext header"
        nb = jupytext.reads(text, fmt="py:percent")
        assert nb.cells[0].cell_type == "markdown", f"{name} must open with what it is for"
        assert "make demo" in nb.cells[0].source and "LEADLENS_HOME" in nb.cells[0].source
        assert all(not c.get("outputs") for c in nb.cells if c.cell_type == "code")
