"""The ``bayes-qse`` command line: happy paths, JSON output, experiments, the demo.

Golden values come from the NumPy loop references of ``tests/reference.py`` (exhaustive search
over deterministic policies for a myopic follower), not from the planner under test.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest
from reference import deterministic_policies, np_follower_response, np_policy_value

from bayes_qse import cli
from bayes_qse.data import Dataset
from bayes_qse.experiments import (
    EXPERIMENTS,
    available_experiments,
    get_experiment,
    load_config,
)
from bayes_qse.experiments.store import RunStore
from bayes_qse.games import Game, patrol_game

REPO = Path(__file__).resolve().parents[1]


def run(argv, capsys):
    try:
        code = cli.main([str(a) for a in argv])
    except SystemExit as exc:
        code = exc.code
    out = capsys.readouterr()
    return code, out.out, out.err


@pytest.fixture(scope="module")
def game_file(tmp_path_factory):
    return patrol_game(horizon=2).save(tmp_path_factory.mktemp("cli") / "patrol.npz")


def test_help_explains_every_subcommand(capsys):
    code, out, _ = run(["--help"], capsys)
    assert code == 0
    commands = ("demo", "games", "make-game", "simulate", "solve", "fit", "run", "plot")
    for command in (*commands, "plan-coverage"):
        assert command in out
        code, sub, _ = run([command, "--help"], capsys)
        assert code == 0 and "usage: bayes-qse " + command in sub
    code, sub, _ = run(["run", "--help"], capsys)
    for flag in ("--config", "--full", "--seeds", "--seed", "--out", "--restart"):
        assert flag in sub
    assert all(name in sub for name in EXPERIMENTS)


def test_games_lists_named_games(capsys):
    code, out, _ = run(["games", "--json"], capsys)
    listed = json.loads(out)
    assert code == 0 and {"patrol", "pricing", "steering"} <= set(listed)
    assert listed["patrol"]["shape"] == list(patrol_game().shape)


def test_make_game_writes_a_loadable_game(tmp_path, capsys):
    code, out, _ = run(["make-game", "pricing", tmp_path / "p.npz", "--eta", "5"], capsys)
    assert code == 0 and "wrote" in out
    assert float(Game.load(tmp_path / "p.npz").eta) == 5.0
    argv = ["make-game", "random", tmp_path / "r.npz", "--seed", "3", "--states", "2"]
    code, _, _ = run([*argv, "--farsighted", "--features", "5"], capsys)
    g = Game.load(tmp_path / "r.npz")
    assert code == 0 and g.farsighted and g.n_states == 2 and g.feature_dim == 5


def test_solve_json_matches_exhaustive_search(game_file, capsys):
    code, out, err = run(["solve", game_file, "--json"], capsys)
    assert code == 0, err
    result = json.loads(out)
    g = Game.load(game_file)
    P, r, rho = np.asarray(g.transitions), np.asarray(g.leader_reward), np.asarray(g.initial_dist)
    u = np.einsum("hsabd,d->hsab", g.features, g.theta)
    nu = np_follower_response(P, u, float(g.eta))
    best = max(np_policy_value(P, r, rho, nu, pi) for pi in deterministic_policies(2, 2, 3))
    assert result["value"] == pytest.approx(best, abs=1e-10)
    policy = np.asarray(result["policy"])
    assert policy.shape == (2, 2, 3)
    assert np_policy_value(P, r, rho, nu, policy) == pytest.approx(best, abs=1e-10)
    assert result["farsighted"] is False and "optimisation_gap" not in result
    code, text, _ = run(["solve", game_file], capsys)
    assert code == 0 and "QSE value" in text


def test_solve_farsighted_reports_starts_and_gap(tmp_path, capsys):
    path = patrol_game(horizon=2, farsighted=True).save(tmp_path / "far.npz")
    code, out, err = run(["solve", path, "--json", "--seed", "1"], capsys)
    assert code == 0, err
    result = json.loads(out)
    assert result["farsighted"] is True
    assert result["value"] == pytest.approx(max(result["start_values"]))
    optimised = np.asarray(result["start_values"][:-2])
    assert result["optimisation_gap"] == pytest.approx(optimised.max() - optimised.min())
    assert result["certified"] is False


def test_simulate_then_fit_mle_and_laplace(game_file, tmp_path, capsys):
    data_path = tmp_path / "d.npz"
    code, _, err = run(
        ["simulate", game_file, data_path, "--episodes", "400", "--seed", "2"], capsys
    )
    assert code == 0, err
    assert Dataset.load(data_path).n_episodes == 400
    code, out, err = run(["fit", data_path, game_file, "--json"], capsys)
    assert code == 0, err
    fit = json.loads(out)
    assert {"theta", "cov", "log_likelihood"} <= set(fit)
    theta, cov = np.asarray(fit["theta"]), np.asarray(fit["cov"])
    truth = np.asarray(Game.load(game_file).theta)
    np.testing.assert_allclose(cov, cov.T, atol=1e-12)
    assert np.all(np.linalg.eigvalsh(cov) > 0)
    # the estimate is within 4 standard errors of the truth, coordinate-wise
    assert np.all(np.abs(theta - truth) < 4 * np.sqrt(np.diag(cov)))
    code, out, err = run(
        ["fit", data_path, game_file, "--method", "laplace", "--json", "--samples", "400"], capsys
    )
    assert code == 0, err
    post = json.loads(out)
    assert {"mean", "sd"} <= set(post) and len(post["mean"]) == truth.size
    code, text, _ = run(["fit", data_path, game_file], capsys)
    assert code == 0 and "std err" in text and "log-likelihood" in text


@pytest.mark.slow
def test_fit_nuts_json_has_diagnostics(game_file, tmp_path, capsys):
    data_path = tmp_path / "d.npz"
    run(["simulate", game_file, data_path, "--episodes", "200"], capsys)
    code, out, err = run(
        ["fit", data_path, game_file, "--method", "nuts", "--samples", "200", "--json"], capsys
    )
    assert code == 0, err
    post = json.loads(out)
    assert {"mean", "sd", "r_hat", "ess"} <= set(post)
    assert all(line.startswith("bayes-qse: warning") for line in err.splitlines())


@pytest.fixture
def toy_experiment(monkeypatch):
    """A registered toy experiment (the real ones are tested by their own test files)."""
    import types

    from bayes_qse import experiments

    mod = types.ModuleType("bayes_qse_cli_toy")
    mod.DEFAULT_CONFIG = {"seeds": 2, "base_seed": 0, "size": 3}
    mod.FULL_CONFIG = {"seeds": 4, "base_seed": 0, "size": 30}

    def run_toy(config, out_dir, *, progress=True):
        store = RunStore(out_dir, "toy", config)
        for i in range(config["seeds"]):
            seed = config["base_seed"] + i
            if not store.has(f"seed{seed}"):
                x = np.random.default_rng(seed).normal(size=config["size"])
                store.save_unit(f"seed{seed}", {"x": x}, {"seed": seed})
        return store.write_results("results", {"n": len(store.keys())})

    def plot(out_dir):
        path = Path(out_dir) / "toy.png"
        path.write_bytes(b"\x89PNG")
        return [path]

    mod.run, mod.plot = run_toy, plot
    monkeypatch.setitem(sys.modules, mod.__name__, mod)
    monkeypatch.setitem(experiments.EXPERIMENTS, "toy", mod.__name__)
    real = experiments.importlib.util.find_spec
    monkeypatch.setattr(
        experiments.importlib.util,
        "find_spec",
        lambda name, *a: True if name == mod.__name__ else real(name, *a),
    )
    return mod


def test_run_resume_and_plot(toy_experiment, tmp_path, capsys):
    out = tmp_path / "toy_run"
    config = tmp_path / "c.toml"
    config.write_text("size = 5\n")
    code, text, err = run(["run", "toy", "--out", out, "--config", config, "--seeds", "3"], capsys)
    assert code == 0, err
    assert f"results: {out / 'results.npz'}" in text and "toy.png" in text
    assert sorted(
        RunStore(out, "toy", load_config(toy_experiment, config, overrides={"seeds": 3})).keys()
    ) == ["seed0", "seed1", "seed2"]
    # same command again: resumes (nothing to do); a changed config is refused in one line
    code, _, err = run(["run", "toy", "--out", out, "--config", config, "--seeds", "3"], capsys)
    assert code == 0, err
    code, _, err = run(["run", "toy", "--out", out, "--seed", "7"], capsys)
    assert code == 2 and err.count("\n") == 1 and "base_seed" in err and "size" in err
    code, text, err = run(["plot", out], capsys)
    assert code == 0 and "toy.png" in text, err
    code, _, err = run(["run", "toy", "--out", out, "--full", "--restart", "--no-plot"], capsys)
    assert code == 0, err
    assert json.loads((out / "manifest.json").read_text())["config"]["size"] == 30


@pytest.mark.parametrize("name", sorted(EXPERIMENTS))
def test_registered_experiments_follow_the_contract(name):
    if name not in available_experiments():
        pytest.skip(f"{name} is not written yet")
    module = get_experiment(name)
    for config in (load_config(module), load_config(module, full=True)):
        assert isinstance(config["seeds"], int) and config["seeds"] >= 1
        assert isinstance(config["base_seed"], int)
    assert callable(module.run) and callable(module.plot)
    script = REPO / "experiments" / f"{name}.py"
    assert script.is_file(), f"missing thin script {script}"
    text = script.read_text()
    assert f'experiment_main("{name}")' in text and text.lstrip().startswith('"""')


@pytest.mark.slow
def test_demo_runs_quickly_and_writes_its_files(tmp_path, capsys):
    """``bayes-qse demo --quick``: every stage, small sizes (the full demo is in README)."""
    out = tmp_path / "demo"
    code, text, err = run(["demo", "--out", out, "--quick", "--no-progress"], capsys)
    assert code == 0, err
    for name in ("posterior.png", "results.json", "patrol_game.npz", "patrol_data.npz"):
        assert (out / name).is_file(), name
        assert str(out / name) in text
    results = json.loads((out / "results.json").read_text())
    assert {"qse", "fit"} <= set(results)
    assert results["qse"]["myopic_value"] == pytest.approx(
        json.loads(run(["solve", out / "patrol_game.npz", "--json"], capsys)[1])["value"]
    )
    if "online" in results:
        assert (out / "regret.png").read_bytes()[:4] == b"\x89PNG"
        assert set(results["online"]) >= {"greedy", "thompson"}


def test_interrupt_and_os_errors_are_one_line(monkeypatch, capsys):
    def interrupted(args):
        raise KeyboardInterrupt

    monkeypatch.setattr(cli, "cmd_games", interrupted)
    code, _, err = run(["games"], capsys)
    assert code == 130 and err.count("\n") == 1 and "rerun the same command" in err

    def denied(args):
        raise PermissionError(13, "Permission denied", "/root/out.npz")

    monkeypatch.setattr(cli, "cmd_games", denied)
    code, _, err = run(["games"], capsys)
    assert code == 2 and err.strip() == "bayes-qse: error: Permission denied: /root/out.npz"


def test_only_the_console_script_freezes_the_heap_before_exit(monkeypatch, capsys):
    """``main()`` as the console script (no ``argv``) freezes the garbage collector's heap
    just before the process exits, so shutdown does not walk it; ``main(argv)`` (tests, an
    embedding program, which go on running) must not.  Fails if the freeze is dropped or made
    unconditional (an embedding process would stop collecting its own cycles)."""
    import gc

    calls = []
    monkeypatch.setattr(gc, "freeze", lambda: calls.append("freeze"))
    monkeypatch.setattr(cli, "_install_signal_handlers", lambda: None)
    assert cli.main(["games"]) == 0
    assert calls == []
    monkeypatch.setattr(sys, "argv", ["bayes-qse", "games"])
    assert cli.main() == 0
    assert calls == ["freeze"]
    assert "patrol" in capsys.readouterr().out
