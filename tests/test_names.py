"""One home per name (issue 25, step 1): every public name is defined in one module, which
alone lists it in its ``__all__``; packages re-export (and say so), never private names.

"Defined in a module" is read off the module's source (a ``def``, a ``class`` or an
assignment at module level, :func:`defined_names`), so a constant imported from elsewhere
does not count, while ``Array = jax.Array`` in :mod:`bayes_qse.types` does.
"""

from __future__ import annotations

import ast
import importlib
import inspect
import pkgutil
from collections import defaultdict
from pathlib import Path

import pytest

import bayes_qse

REPO = Path(__file__).resolve().parents[1]

#: The experiment interface (bayes_qse/experiments/__init__.py): each experiment module
#: defines these names itself, by design, as bsuite's experiments each define theirs
#: (``load_results``: the experiment's labelled ``results.nc``, which its ``plot`` reads;
#: ``make_units`` and ``write_results``: what the one runner,
#: ``executors.run_experiment_module``, calls).
EXPERIMENT_INTERFACE = frozenset(
    {
        "NAME",
        "Config",
        "DEFAULT_CONFIG",
        "FULL_CONFIG",
        "LONG_CONFIG",
        "run",
        "plot",
        "make_units",
        "write_results",
        "load_results",
    }
)

#: Public names still defined in two modules, each waiting for the later step of issue 25
#: that merges the two homes (the test fails once an entry is stale, so the list can only
#: shrink).
PENDING_MERGE: dict[str, str] = {}


def defined_names(module) -> set[str]:
    """Names bound at module level by ``def``, ``class`` or assignment in ``module``'s source
    (also inside top-level ``if``/``try`` blocks); imports and ``__getattr__`` do not count."""
    tree = ast.parse(inspect.getsource(module))
    names: set[str] = set()

    def visit(body):
        for node in body:
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
                names.add(node.name)
            elif isinstance(node, ast.Assign):
                for target in node.targets:
                    names.update(n.id for n in ast.walk(target) if isinstance(n, ast.Name))
            elif isinstance(node, ast.AnnAssign | ast.AugAssign) and isinstance(
                node.target, ast.Name
            ):
                names.add(node.target.id)
            elif isinstance(node, ast.If | ast.Try):
                for block in ("body", "orelse", "finalbody"):
                    visit(getattr(node, block, []))
                for handler in getattr(node, "handlers", []):
                    visit(handler.body)

    visit(tree.body)
    return names


def _modules() -> list[tuple[str, bool]]:
    found = [(bayes_qse.__name__, True)]
    for info in pkgutil.walk_packages(bayes_qse.__path__, "bayes_qse."):
        found.append((info.name, info.ispkg))
    return found


MODULES = _modules()


def export_offenders(name: str) -> list[str]:
    """What is wrong with the ``__all__`` of the non-package module ``name``: each entry that
    the module does not define (a function or class from elsewhere, or a name it imports) or
    that is private."""
    module = importlib.import_module(name)
    defined = defined_names(module)
    bad = []
    for entry in getattr(module, "__all__", ()):
        obj = getattr(module, entry)
        if entry.startswith("_") and not entry.startswith("__"):
            bad.append(f"{entry} (private)")
        elif inspect.isfunction(obj) or inspect.isclass(obj):
            home = obj.__module__ or ""
            # A class or function of this module, or a module-level alias of a third-party
            # type (``Array = jax.Array``); an alias of another bayes_qse class is a re-export.
            if home != name and not (entry in defined and not home.startswith("bayes_qse")):
                bad.append(f"{entry} (defined in {home})")
        elif inspect.ismodule(obj) or entry not in defined:
            bad.append(f"{entry} (not defined here)")
    return bad


def test_every_module_exports_only_what_it_defines():
    """Fails on any re-export from a non-package module, e.g. ``MLEFit`` listed again in
    ``bayes_qse.inference.__all__`` (its home is ``bayes_qse.mle``) or cli's console helpers
    (``_fail``, ``guarded``) listed in ``bayes_qse.cli.__all__``."""
    offenders = {name: bad for name, pkg in MODULES if not pkg and (bad := export_offenders(name))}
    assert not offenders, offenders


def test_every_module_has_an_all():
    """Fails when a module forgets ``__all__`` (its public names then go unchecked above)."""
    missing = [name for name, _ in MODULES if not hasattr(importlib.import_module(name), "__all__")]
    assert not missing, missing


def test_the_export_check_catches_a_re_export_and_passes_a_definition(tmp_path, monkeypatch):
    """The check above can fail: a module that lists an imported function, an imported
    constant, a submodule and a private name is flagged four times, while its own function,
    constant and third-party alias pass."""
    (tmp_path / "fake_mod.py").write_text(
        "import os\nfrom json import dumps\nfrom math import pi\nimport numpy as np\n"
        "Vec = np.ndarray\nLIMIT = 3\ndef f():\n    pass\ndef _g():\n    pass\n"
        "__all__ = ['Vec', 'LIMIT', 'f', 'dumps', 'pi', 'os', '_g']\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    assert export_offenders("fake_mod") == [
        "dumps (defined in json)",
        "pi (not defined here)",
        "os (not defined here)",
        "_g (private)",
    ]


def _home_of(entry: str, obj) -> str | None:
    """The non-package module that defines ``obj`` under the name ``entry``."""
    if inspect.isfunction(obj) or inspect.isclass(obj):
        return obj.__module__
    for name, pkg in MODULES:
        module = importlib.import_module(name)
        if not pkg and entry in defined_names(module) and getattr(module, entry, None) is obj:
            return name
    return None


@pytest.mark.parametrize("package", [name for name, pkg in MODULES if pkg])
def test_packages_say_they_re_export_and_re_export_public_names_only(package):
    """A package's ``__all__`` may gather names from its modules (that is its job), but its
    docstring says so, and each name it re-exports is public in its home module (listed in
    that module's ``__all__``).  Fails on a package re-exporting a private helper, or a name
    its home does not export (e.g. the security runner under its old name)."""
    module = importlib.import_module(package)
    assert "re-export" in (module.__doc__ or ""), f"{package}: the docstring does not say so"
    defined = defined_names(module)
    bad = []
    for entry in getattr(module, "__all__", ()):
        if entry.startswith("_") and not entry.startswith("__"):
            bad.append(f"{entry} (private)")
            continue
        obj = getattr(module, entry)
        if entry in defined or (inspect.ismodule(obj) and obj.__name__.startswith(package)):
            continue  # its own name, or one of its submodules (``bayes_qse.games``)
        home = _home_of(entry, obj)
        if home is None or entry not in getattr(importlib.import_module(home), "__all__", ()):
            bad.append(f"{entry} (home {home} does not export it)")
    assert not bad, bad


def test_no_public_name_is_defined_in_two_modules():
    """Fails on a homonym: two modules defining one public name with two meanings, as the
    episode runner ``learners.runner.run_online`` and the security repeated game's runner
    (now ``security.online.run_security_online``) once did, or the online and security
    learner lists both called ``LEARNERS``.  The experiment interface is exempt (each
    experiment defines its own ``run``, ``plot``, ...); ``PENDING_MERGE`` lists what later
    steps merge, and must not go stale."""
    homes = defaultdict(list)
    for name, _ in MODULES:
        for entry in defined_names(importlib.import_module(name)):
            if not entry.startswith("_"):
                homes[entry].append(name)
    twice = {
        entry: where
        for entry, where in homes.items()
        if len(where) > 1 and entry not in EXPERIMENT_INTERFACE
    }
    assert set(twice) - set(PENDING_MERGE) == set(), {
        k: v for k, v in twice.items() if k not in PENDING_MERGE
    }
    stale = set(PENDING_MERGE) - set(twice)
    assert not stale, f"defined once now, remove from PENDING_MERGE: {stale}"


def test_renamed_public_names_warn_and_point_to_the_new_ones():
    """The renamed names of docs/api.md (the security repeated game's ``run_online`` and
    ``LEARNERS``, the offline experiment's ``run_unit``) still work for one release, with a
    DeprecationWarning that names the new one; fails if an alias is gone, silent, or bound to
    something else."""
    from bayes_qse.experiments import offline_suboptimality
    from bayes_qse.security import online

    for module, old, new in (
        (online, "run_online", "run_security_online"),
        (online, "LEARNERS", "SECURITY_LEARNERS"),
        (offline_suboptimality, "run_unit", "run_offline_unit"),
    ):
        with pytest.warns(DeprecationWarning, match=new):
            assert getattr(module, old) is getattr(module, new)
        with pytest.raises(AttributeError):
            module.no_such_name  # noqa: B018


def test_no_fmt_skip_markers():
    """The code is formatted by ``ruff format`` alone: fails on a formatter-skip or
    formatter-off marker comment, which hides a block from ``ruff format --check``."""
    hits = [
        f"{path.relative_to(REPO)}:{i}"
        for root in ("bayes_qse", "tests", "experiments", "benchmarks")
        for path in sorted((REPO / root).rglob("*.py"))
        for i, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
        if "# fmt: " + "skip" in line or "# fmt: " + "off" in line
    ]
    assert not hits, hits


def test_ci_lints_before_it_tests():
    """``.ci/run`` runs ``make lint`` (ruff check, ruff format --check, lint-imports) and then
    ``make test``; fails if the lint step is dropped or moved after the suite, and if the
    Makefile's lint target stops running one of the three checks."""
    steps = [
        line.strip()
        for line in (REPO / ".ci" / "run").read_text().splitlines()
        if line.strip().startswith("make ")
    ]
    assert steps == ["make lint", "make test"], steps
    makefile = (REPO / "Makefile").read_text()
    lint = makefile.split("\nlint:", 1)[1].split("\n\n", 1)[0]
    for check in ("ruff check", "ruff format --check", "lint-imports"):
        assert check in lint, check
