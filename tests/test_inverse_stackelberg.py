"""The inverse_stackelberg experiment (bayes_qse/experiments/inverse_stackelberg.py): its
comparator (Wu et al.'s structured estimator), the rounds-to-reference interpolation, its
config checks, and determinism by seed whatever the batch of seeds, the resumption or the
executor."""

import warnings

import numpy as np
import pytest

from bayes_qse.errors import ConfigError
from bayes_qse.experiments import get_experiment, load_config
from bayes_qse.experiments import inverse_stackelberg as inv
from bayes_qse.experiments.inverse_report import aggregate_errors, rounds_to_reach
from bayes_qse.inference import fit_mle
from bayes_qse.normal_form import pure_counts, random_security_form_game

TINY = {
    "seeds": 2,
    "m": 3,
    "n": 3,
    "alphas": [0.2],
    "security_targets": 0,
    "sizes": [60],
    "reference_rounds": 60,
    "methods": ["pure", "laplace", "a_two_stage", "a_sequential"],
    "nuts_families": [],
}


def _config(**over):
    return load_config(inv, overrides={**TINY, **over})


def test_wu_structured_estimate_agrees_with_the_bounded_fit_in_the_box_coding():
    # Catches: the comparator maximising another likelihood or over another class (e.g.
    # V_ii = w_i alone, a sign error in its gradient): it must agree with the library's
    # bounded MLE over the same class 0 <= V <= 1 (a separate solver, KKT-checked).
    game = random_security_form_game(4, n_targets=5)
    counts = pure_counts(game, 2000, seed=9)
    V_wu = inv.wu_structured_estimate(
        np.asarray(counts.commitments), np.asarray(counts.counts), float(game.eta)
    )
    box = inv.bounded_v_game(game)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        theta = np.asarray(fit_mle(counts, box, lower=0.0, upper=1.0).theta)
    V_box = np.asarray(box.utilities(theta))
    assert V_wu.min() >= -1e-8 and V_wu.max() <= 1 + 1e-8
    # equal up to the common shift, which neither likelihood sees
    diff = V_wu - V_box
    np.testing.assert_allclose(diff - np.median(diff), 0.0, atol=2e-3)
    V = np.asarray(game.utilities())
    assert np.abs(V_wu - V - np.median(V_wu - V)).mean() < 0.05  # and it is near the truth


def test_rounds_to_reach_interpolates_log_error_on_log_n():
    # Catches: interpolation on N instead of log N, the last crossing taken for the first,
    # a curve that never crosses reported as crossing.
    sizes = np.array([1e2, 1e3, 1e4, 1e5])
    err = 3.0 / np.sqrt(sizes)  # a power law: log-log interpolation is exact
    assert rounds_to_reach(sizes, err, 3.0 / np.sqrt(5e3)) == pytest.approx(5e3, rel=1e-9)
    assert rounds_to_reach(sizes, err, 1.0) == 1e2
    assert np.isnan(rounds_to_reach(sizes, err, 1e-3))
    bumpy = np.array([0.5, 0.1, 0.2, 0.05])
    assert rounds_to_reach(sizes, bumpy, 0.1) == pytest.approx(1e3)
    error = np.stack([err, 2 * err], axis=-1)[None, :, None, :]  # [F=1, N, S=1, M=2]
    out = aggregate_errors(error, sizes, ["pure", "x"], 1e4)
    assert out["rounds_needed"][0, 1] == pytest.approx(4e4, rel=1e-9)  # twice the error
    assert out["rounds_ratio"][0, 0] == pytest.approx(1.0)


@pytest.mark.parametrize(
    ("over", "key"),
    [
        ({"reference_rounds": 7}, "reference_rounds"),
        ({"methods": ["laplace"]}, "methods"),
        ({"methods": ["pure", "a_two_stage_bounded_v"]}, "a_two_stage"),
        ({"nuts_families": ["wu.alpha=0.5"]}, "nuts_families"),
        ({"pilot": 1.0}, "pilot"),
        ({"alphas": [1.5]}, "alphas"),
        ({"security_targets": 2}, "security_targets"),
    ],
)
def test_bad_settings_are_refused_naming_the_key(over, key):
    # Catches: a setting the run would only trip over after hours (or silently ignore).
    with pytest.raises(ConfigError, match=key):
        _config(**over)


def test_the_experiment_is_registered_with_its_configs():
    # Catches: the experiment missing from the registry or the unit engine list.
    from bayes_qse.run_options import ENGINE

    assert get_experiment("inverse_stackelberg") is inv
    assert "inverse_stackelberg" in ENGINE
    full = load_config(inv, full=True)
    assert full["m"] == full["n"] == 10 and max(full["sizes"]) == 10**7 and full["seeds"] >= 10


@pytest.mark.slow
def test_a_seed_gives_the_same_numbers_alone_in_a_batch_resumed_or_in_a_pool(tmp_path):
    # Catches: random streams that depend on the other seeds of the unit, on the order the
    # units run, on resumption (a unit grown from 1 to 2 seeds), or on the process that runs
    # them (a pool of 2 workers).
    both = inv.run(_config(), tmp_path / "both", progress=False)
    alone = inv.run(_config(seeds=1, base_seed=1), tmp_path / "alone", progress=False)
    inv.run(_config(seeds=1), tmp_path / "grown", progress=False)
    grown = inv.run(_config(), tmp_path / "grown", progress=False)
    pool = inv.run(_config(), tmp_path / "pool", progress=False, workers=2)
    with np.load(both) as a, np.load(alone) as b, np.load(grown) as c, np.load(pool) as d:
        assert a["error"].shape == (1, 1, 2, len(inv.INVERSE_METHODS))
        assert np.isfinite(
            a["error"][..., [inv.INVERSE_METHODS.index(k) for k in TINY["methods"]]]
        ).all()
        for key in ("error", "predicted_sq", "realised_sq", "design_gap"):
            np.testing.assert_array_equal(a[key][:, :, 1], b[key][:, :, 0], err_msg=key)
            np.testing.assert_array_equal(a[key], c[key], err_msg=key)
            np.testing.assert_array_equal(a[key], d[key], err_msg=key)
