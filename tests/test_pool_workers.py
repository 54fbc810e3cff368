"""The process pool's workers (bayes_qse._workers): forked from a fork server that has
imported the library without starting JAX, under the driver's environment, XLA pinned; the
results those workers give are the one-process results bit for bit.

Each check runs in a fresh interpreter: the fork server belongs to a process, and these
tests must see it start (pytest's own process may already hold one)."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from bayes_qse import cli

ROOT = Path(__file__).resolve().parents[1]


def _python(code: str, timeout: float = 240) -> str:
    """Run ``code`` in a fresh interpreter (this checkout first on the path, the environment
    of a shell: without the variables this process's import of JAX set); its stdout."""
    path = os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH", "")) if p)
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("TF_CPP_MIN_LOG_LEVEL", "TPU_SKIP_MDS_QUERY")
    }
    env.update(PYTHONPATH=path, JAX_PLATFORMS="cpu")
    proc = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc.stdout


def test_importing_the_library_and_its_experiments_starts_no_jax_backend():
    # Catches: a module-level JAX array (optim.py's line-search steps were one), which starts
    # XLA's runtime and its threads at import: the fork server would then hand its workers a
    # copy of a running runtime (JAX warns that this deadlocks), and XLA_FLAGS set after the
    # import would be ignored.
    out = _python(
        """
        import bayes_qse.commands, bayes_qse.sweeps, bayes_qse._workers as w
        import importlib
        for name in w.PRELOAD:
            importlib.import_module(name)
        for name in ("online_regret", "offline_suboptimality", "rationality_sweep"):
            importlib.import_module("bayes_qse.experiments." + name)
        from jax._src import xla_bridge
        print(xla_bridge.backends_are_initialized())
        """
    )
    assert out.split() == ["False"]


def test_a_sweeps_driver_and_workers_import_no_heavy_library_they_do_not_use():
    # What a sweep's driver imports before its first unit (the command, the sweeps package)
    # and what the fork server imports for the workers (PRELOAD) is the serial start no pool
    # shares out (benchmarks/bench_sweep.py): NumPyro (NUTS and its diagnostics), xarray and
    # pandas (the gathering), the security games, the demo and SciPy's optimisers are
    # imported where they are used.  Catches: a module-level import of any of them coming
    # back on that path (samplers' or posterior's NumPyro, gather's xarray, bounded's or
    # separation's scipy.optimize, commands importing the demo or the experiments); each
    # costs 0.3-1 s of the serial start (scipy.stats 1 s: the quantiles come from
    # scipy.special, which the server preloads).
    out = _python(
        """
        import sys, importlib
        import bayes_qse.commands, bayes_qse.sweeps, bayes_qse._workers as w
        from bayes_qse.sweeps import expand, load_spec, run_sweep
        heavy = ("numpyro", "xarray", "pandas", "scipy.stats", "scipy.optimize",
                 "bayes_qse.security", "bayes_qse.demo", "matplotlib", "arviz")
        print("driver", *[m for m in heavy if m in sys.modules])
        for name in w.PRELOAD:
            importlib.import_module(name)
        print("workers", *[m for m in heavy if m in sys.modules])
        """
    )
    assert out.splitlines() == ["driver", "workers"], out


def test_workers_fork_from_the_server_under_the_drivers_environment_only():
    # The driver starts the server before importing JAX (as the bayes-qse command does); a
    # worker is then a child of the server and has XLA pinned to one thread in its
    # environment without any initializer.  Catches: variables that importing JAX sets
    # itself (TF_CPP_MIN_LOG_LEVEL, TPU_SKIP_MDS_QUERY) counted as a change of environment,
    # which made every pool spawn its workers; a stale server used after the environment
    # or sys.path changed (its workers would run under the old settings, e.g. another
    # BAYES_QSE_X64); a server started without the XLA pin; BAYES_QSE_POOL=spawn ignored
    # (a server started all the same), or a misspelt value taken silently.
    out = _python(
        """
        import os, sys
        from concurrent.futures import ProcessPoolExecutor
        from multiprocessing import forkserver
        sys.orig_argv[:] = [sys.executable, "-m", "bayes_qse.cli"]  # import as the command
        from bayes_qse import _workers as w
        assert "jax" not in sys.modules and "TF_CPP_MIN_LOG_LEVEL" not in os.environ
        os.environ["BAYES_QSE_POOL"] = "spawn"
        print(w.start_server(["os"]), forkserver._forkserver._forkserver_pid)
        del os.environ["BAYES_QSE_POOL"]
        os.environ["XLA_FLAGS"] = "--xla_foo=1 intra_op_parallelism_threads=8"
        assert w.start_server(["os"])
        import jax  # sets TF_CPP_MIN_LOG_LEVEL and TPU_SKIP_MDS_QUERY in os.environ
        context = w.pool_context()
        print(context.get_start_method())
        with ProcessPoolExecutor(1, mp_context=context) as pool:
            ppid = pool.submit(os.getppid).result()
            flags = pool.submit(os.getenv, "XLA_FLAGS").result()
        print(ppid == forkserver._forkserver._forkserver_pid, ppid != os.getpid())
        print(flags == w.pinned_xla_flags(1, "--xla_foo=1 intra_op_parallelism_threads=8"))
        os.environ["BAYES_QSE_X64"] = "0"
        print(w.pool_context().get_start_method())
        del os.environ["BAYES_QSE_X64"]
        print(w.pool_context().get_start_method())
        os.environ["BAYES_QSE_POOL"] = "spawn"
        print(w.pool_context().get_start_method())
        os.environ["BAYES_QSE_POOL"] = "fork"
        try:
            w.pool_context()
        except w.ConfigError as exc:
            print(str(exc).replace(" ", "_"))
        del os.environ["BAYES_QSE_POOL"]
        sys.path.append("/elsewhere")
        print(w.pool_context().get_start_method())
        """
    )
    error = "BAYES_QSE_POOL:_must_be_'forkserver'_or_'spawn',_got_'fork'"
    assert out.split() == [
        "False",
        "None",
        "forkserver",
        "True",
        "True",
        "True",
        "spawn",
        "forkserver",
        "spawn",
        error,
        "spawn",
    ]


def test_a_local_pool_starts_the_server_before_the_command_imports_jax(tmp_path, monkeypatch):
    # Catches: the command starting the server only when the pool starts, after its own
    # import and validation (the server's import then runs after them, not beside them),
    # or starting one for a run that has no local pool.
    calls = []
    monkeypatch.setattr(cli, "start_server", lambda preload: calls.append(tuple(preload)))
    spec = tmp_path / "bad.toml"
    spec.write_text('[grid]\ngame = ["nowhere"]\nlearner = ["uniform"]\nT = [5]\nseeds = [0]\n')
    out = str(tmp_path / "out")
    assert cli.main(["sweep", str(spec), "--out", out, "--workers", "2"]) == 2
    assert calls == [cli.PRELOAD]
    assert cli.main(["sweep", str(spec), "--out", out]) == 2
    assert cli.main(["sweep", str(spec), "--out", out, "--workers", "2", "--executor", "ray"]) == 2
    assert calls == [cli.PRELOAD]
    assert cli.main(["run", "online_regret", "--workers", "2", "--config", str(spec)]) == 2
    assert calls[-1] == (*cli.PRELOAD, "bayes_qse.experiments.online_regret")


@pytest.mark.slow
def test_a_pool_of_forked_workers_gives_the_one_process_sweep_bit_for_bit(tmp_path):
    # Catches: a worker forked from the server computing anything differently from a
    # process that imported the library itself (state of the server's import leaking into
    # the units, XLA settings other than the pin, float32 instead of float64), and a pool
    # that silently fell back to spawn (then this test would not test the fork server).
    out = _python(
        f"""
        import numpy as np
        from bayes_qse import _workers as w
        from bayes_qse.sweeps import open_results, run_sweep
        spec = {{"chunk": 5, "grid": {{"game": ["linear"], "T": [10], "seeds": [0, 1],
                 "learner": ["uniform", "greedy"]}}}}
        run_sweep(spec, {str(tmp_path / "one")!r}, progress=False)
        run_sweep(spec, {str(tmp_path / "pool")!r}, workers=2, progress=False)
        print(w.pool_context().get_start_method())
        a, b = open_results({str(tmp_path / "one")!r}), open_results({str(tmp_path / "pool")!r})
        print(sorted(a.data_vars) == sorted(b.data_vars))
        print(all(np.array_equal(a[v].values, b[v].values, equal_nan=True) for v in a))
        print(a["regret"].dtype)
        """,
        timeout=900,
    )
    assert out.split() == ["forkserver", "True", "True", "float64"]
