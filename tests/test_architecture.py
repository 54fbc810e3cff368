"""The package's shape (docs/architecture.md): import layers with no circles, imports at the top
of modules, and modules small enough to read.

The layers themselves are the ``[tool.importlinter]`` contracts of ``pyproject.toml``, checked
by ``lint-imports`` (import-linter, a dev dependency); ``make lint`` runs it too.
"""

from __future__ import annotations

import ast
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
PACKAGE = REPO / "bayes_qse"

#: Imports that may stay inside functions: heavy plotting/report libraries, loaded only when a
#: figure or an ArviZ export is asked for, the optional ``ray``, and the heavy libraries a
#: sweep's driver and workers do not use (NumPyro, SciPy, xarray: 0.5-1 s each of the serial
#: start no process pool shares out, benchmarks/bench_sweep.py); each such line says so with a
#: ``lazy`` comment.
LAZY_OK = (
    "numpyro",
    "scipy",
    "xarray",
    "h5netcdf",
    "matplotlib",
    "arviz",
    "arviz_base",
    "arviz_stats",
    "arviz_plots",
    ".plots",
    "..plots",
    ".sweeps.plot",
    "ray",
)

#: Modules over ``MAX_LINES`` lines not yet split, each with the reason; everything else must
#: be short or say in its docstring why it is long (a line starting ``Long module:``).
MAX_LINES = 600
PENDING_SPLIT: dict[str, str] = {}


def _lint_imports(*args: str) -> subprocess.CompletedProcess:
    pytest.importorskip("importlinter", reason="import-linter is a dev dependency (.[dev])")
    exe = Path(sys.executable).with_name("lint-imports")
    path = os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])
    env = {**os.environ, "PYTHONPATH": path}
    return subprocess.run(
        [str(exe), "--no-cache", "--no-logo", *args],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_import_layers_are_kept():
    """Fails on any upward import or circle between the layers of pyproject.toml (e.g. the old
    ``follower -> planning -> robust_planning -> planning`` or ``cli <-> experiments``)."""
    proc = _lint_imports()
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
    assert "0 broken" in proc.stdout and "BROKEN" not in proc.stdout


def test_a_broken_layer_contract_is_reported(tmp_path):
    """The check can fail: a contract that puts ``errors`` above ``cli`` is broken, because
    ``cli`` imports ``errors``; a lint step that always passed would pass here too."""
    config = tmp_path / "bad.toml"
    config.write_text(
        '[tool.importlinter]\nroot_package = "bayes_qse"\n\n'
        "[[tool.importlinter.contracts]]\n"
        'name = "deliberately upside down"\ntype = "layers"\n'
        'layers = ["bayes_qse.errors", "bayes_qse.cli"]\n'
    )
    proc = _lint_imports(str(config))
    assert proc.returncode != 0, proc.stdout[-3000:]
    assert "BROKEN" in proc.stdout and "bayes_qse.cli" in proc.stdout


#: The front door's lazy imports (issue 23: ``bayes-qse --help`` imports no JAX): the package
#: configures JAX in ``configure_jax`` (deferred in the command), and the command imports
#: its subcommands' module and the experiments only once a command runs.  Per file, so
#: that nowhere else may import JAX inside a function.
FRONT_DOOR_LAZY = {
    "bayes_qse/__init__.py": ("jax", "._cache"),
    "bayes_qse/cli.py": (".", ".experiments"),
    # Each subcommand imports the heavy parts only it uses (a sweep's driver imports neither
    # the demo, the experiments' reports nor the security games).
    # The security games import NumPyro and SciPy's statistics; the registry every experiment
    # imports builds them only when asked for one.
    "bayes_qse/experiments/games.py": ("..security",),
    "bayes_qse/commands.py": (
        ".demo",
        ".experiments",
        ".experiments.store",
        ".planning",
        ".security",
        ".summary",
        ".sweeps",
        ".sweeps.plot",
    ),
}


def _function_level_imports(path: Path) -> list[tuple[int, str]]:
    """``(line, module)`` of every import written inside a function of ``path`` that is not a
    marked lazy import of a plotting/ArviZ module."""
    source = path.read_text(encoding="utf-8")
    lines = source.splitlines()
    found = []
    for node in ast.walk(ast.parse(source)):
        if not isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            continue
        for inner in ast.walk(node):
            if isinstance(inner, ast.Import):
                names = [a.name for a in inner.names]
            elif isinstance(inner, ast.ImportFrom):
                names = ["." * inner.level + (inner.module or "")]
            else:
                continue
            where = (
                path.resolve().relative_to(REPO) if path.resolve().is_relative_to(REPO) else path
            )
            allowed = (*LAZY_OK, *FRONT_DOOR_LAZY.get(str(where), ()))
            lazy = "lazy" in lines[inner.lineno - 1] and all(
                n.split(".")[0] in allowed or n in allowed for n in names
            )
            if not lazy:
                found.append((inner.lineno, ", ".join(names)))
    return found


def test_imports_are_at_the_top_of_modules():
    """Fails when an import is written inside a function (the way circles were dodged before),
    except the marked lazy imports of matplotlib/ArviZ."""
    offenders = {
        str(p.relative_to(REPO)): hits
        for p in sorted(PACKAGE.rglob("*.py"))
        if (hits := _function_level_imports(p))
    }
    assert not offenders, offenders


def test_the_import_scan_finds_a_function_level_import(tmp_path):
    """The scan above can fail: it flags a plain import inside a function and an unmarked
    plots import, and lets a marked lazy matplotlib import pass."""
    path = tmp_path / "m.py"
    path.write_text(
        "def f():\n    from .planning import solve_qse\n"
        "def g():\n    from ..plots import new_figure\n"
        "def h():\n    import matplotlib  # lazy: figures only\n"
    )
    assert _function_level_imports(path) == [(2, ".planning"), (4, "..plots")]


def test_modules_are_short_or_say_why():
    """Fails when a module grows past MAX_LINES lines without a ``Long module:`` reason in its
    docstring, and when a module listed as pending a split is already short (stale entry)."""
    long = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        rel = str(path.relative_to(REPO))
        n = len(path.read_text(encoding="utf-8").splitlines())
        doc = ast.get_docstring(ast.parse(path.read_text(encoding="utf-8"))) or ""
        if rel in PENDING_SPLIT:
            assert n > MAX_LINES, f"{rel} has {n} lines: remove it from PENDING_SPLIT"
        elif n > MAX_LINES and "Long module:" not in doc:
            long[rel] = n
    assert not long, long


def test_the_unit_engine_sits_below_every_experiment_without_ignore_lists():
    """The experiments run their units on the engine (``experiments.executors`` and
    ``experiments.units``), which the sweeps also use: the engine must sit below every
    experiment in the ``experiments`` contract and ``sweeps`` above ``experiments``, and no
    contract may dodge a layer with an ignore list.  Fails if the engine is moved above an
    experiment (it would then have to import it), or an ``ignore_imports`` hides a cycle."""
    import tomllib

    contracts = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["importlinter"]
    contracts = contracts["contracts"]
    assert not any("ignore_imports" in c for c in contracts)
    layers = {
        c["id"]: [set(x.replace(" ", "").split("|")) for x in c.get("layers", [])]
        for c in contracts
    }

    def level(contract: str, module: str) -> int:
        return next(i for i, names in enumerate(layers[contract]) if module in names)

    for experiment in ("online_regret", "offline_suboptimality", "rationality_sweep"):
        assert level("experiments", experiment) < level("experiments", "executors")
    assert level("experiments", "executors") < level("experiments", "units")
    assert level("experiments", "units") < level("experiments", "store")
    assert level("layers", "sweeps") < level("layers", "experiments")


def _contracts() -> list[dict]:
    import tomllib

    return tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["importlinter"]["contracts"]


def doc_layer_tables(text: str) -> dict[str, list[set[str]]]:
    """The layer tables of docs/architecture.md, by the contract id their heading names
    (``## ... (contract `ID`)``): per row, the set of modules of its second column."""
    tables: dict[str, list[set[str]]] = {}
    current = None
    for line in text.splitlines():
        heading = re.match(r"^#+ .*\(contract `([^`]+)`\)\s*$", line)
        if heading:
            current = heading.group(1)
            tables[current] = []
        elif current and line.startswith("| ") and not line.startswith("| ---"):
            cells = [c.strip() for c in re.split(r"(?<!\\)\|", line)[1:-1]]
            if cells[0] == "layer (top to bottom)":
                continue
            tables[current].append({m.strip(" `") for m in cells[1].split("\\|")})
    return tables


def test_the_layer_tables_of_the_docs_are_the_contracts():
    """docs/architecture.md has one table per ``layers`` contract of pyproject.toml, with the
    same layers in the same order and the same modules in each, and names every other
    contract.  Fails when a module is layered in pyproject but missing from the docs (as
    ``samplers``, ``backward``, ``summary`` and ``_cache`` once were), when two layers are
    swapped, or when a contract is added without its table."""
    text = (REPO / "docs" / "architecture.md").read_text(encoding="utf-8")
    tables = doc_layer_tables(text)
    for contract in _contracts():
        if contract["type"] != "layers":
            assert f"(`{contract['id']}`)" in text, contract["id"]
            continue
        want = [{m.strip() for m in layer.split("|")} for layer in contract["layers"]]
        assert tables.get(contract["id"]) == want, contract["id"]
    assert set(tables) == {c["id"] for c in _contracts() if c["type"] == "layers"}


def test_the_table_parser_reads_modules_and_contract_ids():
    """The parser above can fail: it reads escaped ``\\|`` separators inside a cell, skips
    the header and rule rows, and files rows under the contract their heading names."""
    text = (
        "## A (contract `one`)\n\n| layer (top to bottom) | modules | subject |\n"
        "| --- | --- | --- |\n| top | `a \\| b` | x |\n| low | `c` | y |\n"
        "## B (contract `two`)\n| z | `d` | w |\n"
    )
    assert doc_layer_tables(text) == {"one": [{"a", "b"}, {"c"}], "two": [{"d"}]}


def test_every_package_module_is_in_a_layer():
    """Every module and subpackage directly under a contract's container appears in one of
    its layers (``exhaustive = true`` makes lint-imports insist too, but only for modules it
    sees imported); fails on a new module left out of pyproject and the docs."""
    for contract in _contracts():
        if contract["type"] != "layers":
            continue
        container = PACKAGE.parent.joinpath(*contract["containers"][0].split("."))
        present = {
            p.stem if p.is_file() else p.name
            for p in container.iterdir()
            if (p.suffix == ".py" and p.name != "__init__.py")
            or (p.is_dir() and (p / "__init__.py").exists())
        }
        layered = {m.strip() for layer in contract["layers"] for m in layer.split("|")}
        assert present == layered, (contract["id"], present ^ layered)
