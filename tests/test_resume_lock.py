"""Runs that cannot get stuck and one writer per output directory (issue 12, items 2 and 3),
driven through ``bayes_qse.experiments`` and the command line as a user would."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import numpyro  # noqa: F401  (RunStore imports it; it registers JAX options: import first)
import pytest
import xarray as xr

from bayes_qse.cli import main
from bayes_qse.errors import ConfigError
from bayes_qse.experiments import locks as locks_module
from bayes_qse.experiments import online_units, run_experiment
from bayes_qse.experiments.locks import LOCK, OutputLock, RunNotice
from bayes_qse.experiments.store import RunStore
from bayes_qse.experiments.units import load_parts, open_unit
from bayes_qse.learners import OnlineRunner

ROOT = Path(__file__).resolve().parents[1]
TINY = 'games = ["linear"]\nlearners = ["greedy"]\nepisodes = 6\nchunk = 3\n'
#: The one unit of TINY: its directory (bayes_qse.experiments.units).
UNIT = Path("units") / "game=linear.learner=greedy.T=6"


# ---- resumption that cannot get stuck ----------------------------------------------------


@pytest.fixture(scope="module")
def shared_runner():
    """One compiled runner for every run of this module (OnlineRunner is rebuilt per run;
    caching it only saves compilations, the results are those of a fresh runner)."""
    cache: dict = {}

    def make(game, learner, config, **kw):
        key = (learner, kw["episodes"], kw["chunk"])
        if key not in cache:
            cache[key] = OnlineRunner(game, learner, config, **kw)
        return cache[key]

    return make


@pytest.fixture
def tiny(tmp_path, monkeypatch, shared_runner):
    monkeypatch.setattr(online_units, "OnlineRunner", shared_runner)
    path = tmp_path / "tiny.toml"
    path.write_text(TINY)

    def run(out, seeds):
        results, _ = run_experiment(
            "online_regret",
            config_path=path,
            seeds=seeds,
            out=out,
            show_progress=False,
            make_plots=False,
        )
        with np.load(results) as data:
            return {k: data[k] for k in data.files}

    return run


@pytest.fixture
def reference(tiny, tmp_path):
    """A fresh, uninterrupted 3-seed run."""
    return tiny(tmp_path / "fresh", 3)


def _kill_after(monkeypatch, method: str, n: int) -> None:
    original = getattr(RunStore, method)
    calls = {"n": 0}

    def wrapped(self, *args, **kwargs):
        out = original(self, *args, **kwargs)
        calls["n"] += 1
        if calls["n"] == n:
            monkeypatch.setattr(RunStore, method, original)
            raise KeyboardInterrupt("killed")
        return out

    monkeypatch.setattr(RunStore, method, wrapped)


def _same_seeds(results, reference, n):
    for f in ("regret", "theta_error", "set_size"):
        key = f"linear.greedy.{f}"
        assert results[key].shape == (n, 6)
        np.testing.assert_array_equal(results[key], reference[key][:n])


def test_interrupted_with_2_seeds_then_rerun_with_3(tiny, reference, tmp_path, monkeypatch):
    """Killed in the middle of a unit (seed 0 saved chunk 2, seed 1 not) with --seeds 2;
    rerun with --seeds 3: exit 0, and every seed equals the fresh 3-seed run."""
    out = tmp_path / "grow"
    _kill_after(monkeypatch, "save_checkpoint", 3)
    with pytest.raises(KeyboardInterrupt):
        tiny(out, 2)
    assert sorted(p.name for p in (out / UNIT / "checkpoints" / "run").iterdir()) == [
        "seed0.npz",
        "seed1.npz",
    ]
    _same_seeds(tiny(out, 3), reference, 3)
    assert not (out / UNIT / "checkpoints" / "run").exists()  # cleaned up when done


def test_killed_between_two_per_seed_unit_saves(tiny, reference, tmp_path, monkeypatch):
    out = tmp_path / "units"
    _kill_after(monkeypatch, "save_unit", 1)
    with pytest.raises(KeyboardInterrupt):
        tiny(out, 3)
    assert sorted(p.name for p in (out / UNIT / "units").iterdir()) == ["seed0.npz"]
    played = []
    monkeypatch.setattr(
        OnlineRunner, "run_chunk", lambda *a: played.append(a) or pytest.fail("recomputed")
    )
    _same_seeds(tiny(out, 3), reference, 3)  # seeds 1, 2 from their finished checkpoints
    assert played == []


def test_checkpoints_that_do_not_match_are_set_aside(tiny, reference, tmp_path, monkeypatch):
    out = tmp_path / "aside"
    _kill_after(monkeypatch, "save_checkpoint", 3)  # seeds 0, 1, 2 saved chunk 1
    with pytest.raises(KeyboardInterrupt):
        tiny(out, 3)
    folder = out / UNIT / "checkpoints" / "run"
    (folder / "seed1.npz").write_bytes(b"truncated")  # unreadable
    seed2 = dict(np.load(folder / "seed2.npz"))
    meta = json.loads(str(seed2["__meta__"]))
    seed2["__meta__"] = np.array(json.dumps({**meta, "episodes": 60}))  # another run length
    np.savez(folder / "seed2.npz", **seed2)
    (out / UNIT / "checkpoints" / "run.npz").write_bytes(b"old format")  # older version
    with pytest.warns(RunNotice) as notices:
        _same_seeds(tiny(out, 3), reference, 3)
    text = [str(w.message) for w in notices]
    assert any("run/seed1.npz (unreadable" in t for t in text), text
    assert any("run/seed2.npz (episodes 60, this run has 6)" in t for t in text), text
    assert any("run.npz (a whole-batch checkpoint)" in t for t in text), text
    assert (
        len(list((out / UNIT / "checkpoints" / ".set-aside").iterdir())) == 3
    )  # kept, not deleted


@pytest.mark.slow
def test_cli_rerun_with_more_seeds_resumes(tiny, reference, tmp_path, monkeypatch):
    """The issue's command line: interrupted with --seeds 2, `bayes-qse run` with --seeds 3."""
    out = tmp_path / "cli"
    _kill_after(monkeypatch, "save_checkpoint", 3)
    with pytest.raises(KeyboardInterrupt):
        tiny(out, 2)
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "bayes_qse.cli",
            "run",
            "online_regret",
            "--config",
            str(tmp_path / "tiny.toml"),
            "--seeds",
            "3",
            "--out",
            str(out),
            "--no-plot",
            "--no-progress",
        ],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=ROOT,
    )
    assert proc.returncode == 0, proc.stderr
    with np.load(out / "results.npz") as data:
        _same_seeds({k: data[k] for k in data.files}, reference, 3)


# ---- one writer per output directory -------------------------------------------------------

HOLDER = """
import sys
from bayes_qse.experiments.store import RunStore
store = RunStore(sys.argv[1], "online_regret", {"seeds": 1, "base_seed": 0})
print("ready", flush=True)
sys.stdin.readline()
store.close()
"""


@pytest.fixture
def holder(tmp_path):
    out = tmp_path / "held"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(out)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    assert proc.stdout.readline().strip() == "ready", proc.stderr.read()
    yield out, proc
    if proc.poll() is None:
        proc.kill()
    proc.wait()
    for pipe in (proc.stdin, proc.stdout, proc.stderr):
        pipe.close()


def test_a_second_writer_is_refused_naming_the_holder(holder, capsys):
    out, proc = holder
    host = socket.gethostname()
    holder_text = rf"pid {proc.pid} on host {host}, started 20\d\d-"
    with pytest.raises(ConfigError, match=rf"is in use by another run \({holder_text}"):
        RunStore(out, "online_regret", {"seeds": 1, "base_seed": 0})
    # the command line: exit 2, one line naming the holder, nothing written
    before = sorted(p.name for p in out.iterdir())
    assert main(["run", "online_regret", "--out", str(out), "--restart", "--no-plot"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"pid {proc.pid} on host {host}" in err
    assert sorted(p.name for p in out.iterdir()) == before
    # released by the holder: taken without a notice
    proc.stdin.write("done\n")
    proc.stdin.flush()
    assert proc.wait(timeout=60) == 0
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        RunStore(out, "online_regret", {"seeds": 1, "base_seed": 0}).close()


def test_the_lock_of_a_killed_run_is_taken_over_with_a_notice(holder):
    out, proc = holder
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    with pytest.warns(RunNotice, match=rf"stale lock .* pid {proc.pid} .*no longer running"):
        store = RunStore(out, "online_regret", {"seeds": 1, "base_seed": 0})
    assert json.loads((out / LOCK).read_text())["pid"] == os.getpid()
    store.close()
    assert (out / LOCK).read_text() == ""  # a clean release leaves no holder behind


def _write_lock(out: Path, pid: int) -> None:
    out.mkdir(parents=True, exist_ok=True)
    holder = {"pid": pid, "host": socket.gethostname(), "started": "2026-01-01T00:00:00+00:00"}
    (out / LOCK).write_text(json.dumps(holder))


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid  # reaped: no such process (unless the pid was reused within the test)


@pytest.mark.parametrize("flock", [True, False])
def test_stale_lock_file_naming_a_dead_pid(tmp_path, monkeypatch, flock):
    """With flock (the normal case) and without it (file systems that lack flock, where only
    the recorded pid can tell): a lock file naming a pid that does not exist is taken over."""
    if not flock:
        monkeypatch.setattr(locks_module, "_try_flock", lambda fd: None)
    pid = _dead_pid()
    _write_lock(tmp_path, pid)
    with pytest.warns(RunNotice, match=rf"stale lock of .* left by pid {pid} .*no longer running"):
        with RunStore(tmp_path, "online_regret", {"seeds": 1, "base_seed": 0}):
            assert json.loads((tmp_path / LOCK).read_text())["pid"] == os.getpid()


def test_without_flock_a_live_recorded_pid_keeps_the_lock(tmp_path, monkeypatch):
    monkeypatch.setattr(locks_module, "_try_flock", lambda fd: None)
    _write_lock(tmp_path, os.getppid())  # alive: our parent
    with pytest.raises(ConfigError, match=rf"in use by another run \(pid {os.getppid()} "):
        RunStore(tmp_path, "online_regret", {"seeds": 1, "base_seed": 0})


def test_the_lock_is_reentrant_within_a_process(tmp_path):
    with OutputLock(tmp_path, "online_regret"):
        with RunStore(tmp_path, "online_regret", {"seeds": 1, "base_seed": 0}) as store:
            store.save_unit("a", {"x": np.ones(2)})
        assert json.loads((tmp_path / LOCK).read_text())["pid"] == os.getpid()  # still held
    assert (tmp_path / LOCK).read_text() == ""


def test_rationality_sweep_keeps_seed_rows_across_seeds(tmp_path, monkeypatch, shared_runner):
    """rationality_sweep stores all seeds of a (eta, learner) in one unit: a rerun with more
    (or fewer) --seeds computes only the new seeds and joins the rows it already has (they do
    not depend on the batch); before, the old unit was kept with the old number of rows."""
    from bayes_qse.experiments import load_config
    from bayes_qse.experiments import rationality_sweep as sweep

    monkeypatch.setattr(
        online_units, "OnlineRunner", shared_runner
    )  # make_runner's (the sweep's too)
    # the set-width part is not under test here: its unit is saved beforehand (so the sweep
    # skips it) and the aggregation, which reads it, is left out
    monkeypatch.setattr(sweep, "sweep_results", lambda store, config: xr.Dataset())
    monkeypatch.setattr(sweep, "sweep_arrays", lambda ds: {})
    overrides = {"etas": [1.0], "learners": ["greedy"], "episodes": 4, "chunk": 2}
    played = []
    run_chunk = OnlineRunner.run_chunk
    monkeypatch.setattr(
        OnlineRunner,
        "run_chunk",
        lambda self, s, seeds, t0: played.append(list(seeds)) or run_chunk(self, s, seeds, t0),
    )

    def run(out, seeds):
        config = load_config(sweep, overrides={**overrides, "seeds": seeds})
        (width,), online = sweep.unit_groups(config)
        with open_unit(out, width) as store:
            store.save_unit("result", {"x": np.zeros(1)})
        sweep.run(config, out, progress=False)
        parts = load_parts(out, online[1.0, "greedy"])
        rows = {
            f: np.stack([a[f] for a, _ in parts]) for f in ("regret", "theta_error", "set_size")
        }
        return {"seeds": np.array([m["seed"] for _, m in parts]), **rows}

    fresh = run(tmp_path / "fresh", 3)
    played.clear()
    grown = run(tmp_path / "grown", 2)
    grown = run(tmp_path / "grown", 3)
    assert played == [[0, 1], [0, 1], [2], [2]]  # two chunks for seeds 0, 1; then for seed 2
    shrunk = run(tmp_path / "grown", 1)
    assert played[4:] == []  # nothing recomputed
    for f in ("regret", "theta_error", "set_size"):
        np.testing.assert_array_equal(grown[f], fresh[f])
        np.testing.assert_array_equal(shrunk[f], fresh[f][:1])
    np.testing.assert_array_equal(grown["seeds"], [0, 1, 2])
