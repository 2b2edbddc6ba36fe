"""The tour notebook (experiments/notebook/jaxnin_tour.ipynb): it runs top to bottom as a reader
runs it, on the CPU against the real MNIST, and it uses only the names `jaxnin` exports.

Running it takes about a minute on 2 CPU cores (most of it LeNet-5's three short epochs and
their compiles); its own cells assert what they show, so any failed check fails this test.
"""
import ast
import json
import sys
from pathlib import Path

import pytest

import jaxnin

NOTEBOOK = Path(__file__).resolve().parents[1] / "experiments" / "notebook" / "jaxnin_tour.ipynb"
CELL_TIMEOUT_S = 180
# What the tour exists to show; dropping one of these from it should be a decision, not a slip.
TOURED = {"NiNBlock", "create_model", "summarize", "recipe", "fit", "load_run", "evaluate",
          "predict"}


def code_cells(notebook: dict) -> list[str]:
    return ["".join(cell["source"]) for cell in notebook["cells"] if cell["cell_type"] == "code"]


def jaxnin_aliases(tree: ast.AST) -> set[str]:
    """The names `import jaxnin [as name]` binds in `tree`."""
    return {alias.asname or alias.name for node in ast.walk(tree) if isinstance(node, ast.Import)
            for alias in node.names if alias.name == "jaxnin"}


def private_uses(source: str, aliases: set[str] = frozenset()) -> tuple[set[str], list[str]]:
    """(the names read from the jaxnin module, the ways `source` reaches past jaxnin.__all__);
    `aliases` are the names an earlier cell bound to the module."""
    tree = ast.parse(source)
    aliases = {"jaxnin", *aliases, *jaxnin_aliases(tree)}
    used, problems = set(), []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            problems += [f"line {node.lineno}: import {alias.name}" for alias in node.names
                         if alias.name.startswith("jaxnin.")]
        elif isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] == "jaxnin":
            problems.append(f"line {node.lineno}: from {node.module} import ... (use jaxnin.X)")
        elif (isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name)
              and node.value.id in aliases):
            used.add(node.attr)
            if node.attr not in (*jaxnin.__all__, "__all__"):
                problems.append(f"line {node.lineno}: jaxnin.{node.attr} is not in "
                                "jaxnin.__all__")
    return used, problems


def test_the_checker_catches_private_imports():
    source = ("import jaxnin\nimport jaxnin as jn\nimport jaxnin.runs\n"
              "from jaxnin.runs import Run\nfrom jaxnin import fit\n"
              "jaxnin.fit; jn.recipe; jaxnin.models; jn.__version__; jaxnin.__all__\n")
    used, problems = private_uses(source)
    assert used == {"fit", "recipe", "models", "__version__", "__all__"}
    assert len(problems) == 5, problems
    assert private_uses("import numpy\nnumpy.models\n") == (set(), [])
    assert private_uses("jn.models\n", {"jn"}) == ({"models"}, ["line 1: jaxnin.models is not "
                                                                 "in jaxnin.__all__"])


def test_notebook_uses_only_the_public_api_and_is_stored_without_outputs():
    notebook = json.loads(NOTEBOOK.read_text())
    sources = code_cells(notebook)
    aliases = set().union(*(jaxnin_aliases(ast.parse(source)) for source in sources))
    used, problems = set(), []
    for index, source in enumerate(sources):
        cell_used, cell_problems = private_uses(source, aliases)
        used |= cell_used
        problems += [f"code cell {index}, {problem}" for problem in cell_problems]
    assert not problems, "\n".join(problems)
    assert TOURED <= used, f"the tour no longer shows {sorted(TOURED - used)}"
    kept = [index for index, cell in enumerate(notebook["cells"])
            if cell["cell_type"] == "code" and (cell["outputs"] or cell["execution_count"])]
    assert not kept, f"code cells {kept} were stored with outputs: clear them before committing"


def test_notebook_runs_on_the_cpu(shared_data, data_cache, tmp_path, monkeypatch):
    nbformat = pytest.importorskip("nbformat", reason="pip install -e '.[dev]'")
    nbclient = pytest.importorskip("nbclient", reason="pip install -e '.[dev]'")
    pytest.importorskip("ipykernel", reason="pip install -e '.[dev]'")
    monkeypatch.setenv("JAXNIN_DATA_DIR", str(shared_data))
    monkeypatch.setenv("JAXNIN_NOTEBOOK_WORKDIR", str(tmp_path / "run"))
    monkeypatch.setenv("JAXNIN_CACHE_DIR", str(data_cache))
    monkeypatch.setenv("IPYTHONDIR", str(tmp_path / "ipython"))
    monkeypatch.setenv("JAX_PLATFORMS", "cpu")
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    # The kernel must be this interpreter's (jupyter_client runs a kernelspec's "python" as
    # sys.executable): a first cell says which environment it runs in.
    notebook.cells.insert(0, nbformat.v4.new_code_cell("import sys; print(sys.prefix)"))
    client = nbclient.NotebookClient(notebook, timeout=CELL_TIMEOUT_S, kernel_name="python3",
                                     resources={"metadata": {"path": str(tmp_path)}})
    client.execute()  # raises CellExecutionError, with the cell and its traceback, on any error

    assert notebook.cells[0].outputs[0]["text"].strip() == sys.prefix
    run_json = json.loads((tmp_path / "run" / "run.json").read_text())
    assert run_json["config"]["data_dir"] == str(shared_data)
    images = [output for cell in notebook.cells if cell.cell_type == "code"
              for output in cell.outputs if "image/png" in output.get("data", {})]
    assert len(images) == 2  # the learning curves and the prediction grid
