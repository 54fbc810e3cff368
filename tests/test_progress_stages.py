"""Progress inside units (issue 23): a stage line on stderr before every experiment step that
can take more than a few seconds (compiling, the episode count, NUTS warm-up/sampling, each
study of a security-games seed), through :mod:`bayes_qse.progress`; never in the results."""

from __future__ import annotations

import json

import numpy as np
import pytest

from bayes_qse.games import random_game
from bayes_qse.learners.runner import run_online

GAME = random_game(0, 2, 2, 2, 2, 3, eta=2.0)


def test_runner_says_compiling_and_counts_episodes(capsys):
    """Bug caught: a unit sitting at 0/1 while its first chunk compiles, with no word; the
    stage lines changing the records (they must not)."""
    quiet = run_online(GAME, "greedy", episodes=6, seeds=[0, 1], chunk=3, progress=False)
    capsys.readouterr()
    loud = run_online(GAME, "greedy", episodes=6, seeds=[0, 1], chunk=3, progress=True)
    err = capsys.readouterr().err
    assert "greedy: compiling the episode loop (3 episodes)" in err
    assert err.count("compiling") == 1  # once, not every chunk
    assert "episode 6/6" in err or "episode 3/6" in err
    for key in ("regret", "theta_error"):
        np.testing.assert_array_equal(quiet[key], loud[key])


def test_stage_lines_are_silent_when_disabled(capsys):
    """``--no-progress``: nothing on stderr.  Bug caught: a stage printed regardless."""
    from bayes_qse.progress import stage, stage_printer

    stage("compiling", enabled=False)
    stage_printer("x", enabled=False)("warm-up 1/2")
    assert capsys.readouterr().err == ""
    stage_printer("x", enabled=True)("warm-up 1/2")
    assert capsys.readouterr().err == "  x: warm-up 1/2\n"


@pytest.mark.slow
def test_posterior_inspection_reports_its_stages(tmp_path, capsys):
    """Bug caught: ``run posterior_inspection`` silent at 0/1 for 100 s (simulation, MLE,
    NUTS compile, warm-up, sampling, Laplace); stage text leaking into results.json."""
    from bayes_qse.experiments import posterior_inspection as pi

    config = {
        **pi.DEFAULT_CONFIG,
        "n_episodes": 30,
        "num_warmup": 20,
        "num_samples": 20,
        "num_chains": 1,
        "laplace_samples": 20,
    }
    pi.run(config, tmp_path / "pi", progress=True)
    err = capsys.readouterr().err
    for text in (
        "seed 0: simulating 30 episodes, MLE fit (compiling)",
        "NUTS (compiling",
        "warm-up",
        "sampling",
        "Laplace posterior",
    ):
        assert text in err, err
    results = (tmp_path / "pi" / "results.json").read_text()
    assert "compiling" not in results and "warm-up" not in json.loads(results).get("summary", "")


@pytest.mark.slow
def test_security_games_seed_reports_each_study():
    """Bug caught: ``run security_games`` at 0/2 for 3 minutes without a word; each study
    (the optimum, each sample size, each online learner, each planning size) gets a line."""
    from bayes_qse.experiments import security_games as sg

    config = {
        **sg.DEFAULT_CONFIG,
        "sample_sizes": [10],
        "rounds": 2,
        "learners": ["greedy"],
        "planning_sizes": [5],
        "plan_steps": 5,
        "plan_starts": 1,
        "learner": {"steps": 5, "n_starts": 1, "num_draws": 2},
        "num_samples": 10,
    }
    said: list[str] = []
    sg.run_seed(config, 0, said.append)
    assert said == [
        "the game's optimal coverage (compiling the planner)",
        "estimation study, 10 attacks (1/1)",
        "online greedy, 2 rounds (1/1)",
        "planning study, 5 attacks (1/1)",
    ]


@pytest.mark.slow
def test_offline_unit_says_each_fit():
    """Bug caught: an offline unit fitting every learner on every size without a word."""
    from bayes_qse.experiments import offline_suboptimality as off

    config = {
        **off.DEFAULT_CONFIG,
        "sizes": [5, 10],
        "learners": off.DEFAULT_CONFIG["learners"][:2],
    }
    game, optimal = off._solved("linear", json.dumps(config, sort_keys=True))
    said: list[str] = []
    a, b = config["learners"]
    quiet = off.run_offline_unit(game, optimal, "uniform", 0, config, 0)
    loud = off.run_offline_unit(game, optimal, "uniform", 0, config, 0, say=said.append)
    assert said == [
        f"fitting {a} on 5 episodes (1/4)",
        f"fitting {b} on 5 episodes (2/4)",
        f"fitting {a} on 10 episodes (3/4)",
        f"fitting {b} on 10 episodes (4/4)",
    ]
    np.testing.assert_array_equal(quiet["value"], loud["value"])
