"""Every experiment script runs as users run it: ``python experiments/NAME.py --config tiny.toml
--seeds N --out DIR --no-progress``, in a fresh interpreter, at its tiniest settings.

``online_regret`` and ``offline_suboptimality`` have their script tests in
tests/test_online_regret.py and tests/test_offline_experiment.py; this file covers the others.
Bugs caught: a script that no longer imports (a module moved, an import circle that only
bites in a fresh process), a run that does not write ``results.npz``, a figure that fails.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from bayes_qse.experiments import EXPERIMENTS

REPO = Path(__file__).resolve().parents[1]

_TINY_SETS = (
    "levels = [0.8, 0.95]\nn_directions = 4\nlaplace_draws = 20\n"
    "nuts_warmup = 10\nnuts_samples = 10\n"
)

#: name -> (TOML settings, --seeds, files the run must write besides results.npz)
SCRIPTS = {
    "confidence_sets": (
        _TINY_SETS + 'batch_size = 2\ncases = ["well_specified"]\nsample_sizes = [10]\n'
        "sbc_replications = 2\nsbc_sample_size = 10\nsbc_thin = 1\n",
        2,
        ("results.nc", "calibration.png", "tables.md"),
    ),
    "posterior_inspection": (
        "n_episodes = 20\nnum_warmup = 10\nnum_samples = 10\nnum_chains = 2\n"
        "laplace_samples = 20\n",
        1,
        ("trace.png", "summary.md"),
    ),
    "rationality_sweep": (
        _TINY_SETS + 'etas = [1.0]\nlearners = ["greedy"]\nepisodes = 2\nchunk = 2\n'
        "width_replications = 2\nwidth_sample_size = 10\n",
        1,
        ("results.nc", "sweep.png", "table.md"),
    ),
    "security_games": (
        "n_targets = 3\nresources = 1.0\nsample_sizes = [10]\nplan_starts = 2\n"
        "plan_steps = 20\nrounds = 3\nnum_draws = 4\nonline_starts = 1\nonline_steps = 5\n"
        "planning_sizes = [10]\n",
        1,
        ("sample_efficiency.png", "online_regret.png", "planning.png", "table.md"),
    ),
    "inverse_stackelberg": (
        "m = 2\nn = 2\nalphas = [0.2]\nsecurity_targets = 3\nsizes = [40]\n"
        'reference_rounds = 40\nmethods = ["pure", "laplace", "a_two_stage", "wu_structured"]\n'
        "nuts_families = []\n",
        1,
        ("error_vs_rounds.png", "table.md"),
    ),
}


def test_every_registered_experiment_has_a_script_test():
    """A new experiment without a script smoke test (here or in its own test file) fails."""
    elsewhere = {"online_regret", "offline_suboptimality"}
    assert set(EXPERIMENTS) == set(SCRIPTS) | elsewhere


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(SCRIPTS))
def test_script_runs_at_its_tiniest_config(name, tmp_path):
    settings, seeds, files = SCRIPTS[name]
    config = tmp_path / "tiny.toml"
    config.write_text(settings)
    out = tmp_path / "out"
    proc = subprocess.run(
        [
            sys.executable,
            str(REPO / "experiments" / f"{name}.py"),
            "--config",
            str(config),
            "--seeds",
            str(seeds),
            "--out",
            str(out),
            "--no-progress",
        ],
        capture_output=True,
        text=True,
        timeout=900,
        cwd=REPO,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert f"results: {out / 'results.npz'}" in proc.stdout
    with np.load(out / "results.npz") as f:
        assert f.files and all(f[k].size for k in f.files)
    for file in files:
        assert (out / file).is_file(), file
