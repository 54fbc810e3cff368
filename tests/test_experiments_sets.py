"""The confidence_sets, posterior_inspection and rationality_sweep experiments: each runs end
to end with tiny settings (results, figures, tables, resumption), plus independent checks of
the pieces they are built from (Clopper-Pearson against statsmodels, the response and value
functionals against NumPy loops, the pseudo-true parameter, the LR boundary).

The confidence_sets and rationality_sweep runs are marked slow: even tiny, they compile the
vmapped fits, the batched NUTS sampler and the online runners (about 30 s of CPU each)."""

import json
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import xarray as xr
from reference import np_follower_response, np_policy_value
from statsmodels.stats.proportion import proportion_confint

from bayes_qse import profile
from bayes_qse.errors import ConfigError
from bayes_qse.experiments import confidence_sets as cs
from bayes_qse.experiments import get_experiment, load_config, set_coverage
from bayes_qse.experiments import posterior_inspection as pi
from bayes_qse.experiments import rationality_sweep as rs
from bayes_qse.experiments.units import load_parts
from bayes_qse.likelihood import log_likelihood
from bayes_qse.model import Model

# Shared tiny settings: the sweep's set-width part reuses the compiled confidence_sets code.
TINY_SETS = {
    "levels": [0.8, 0.95],
    "n_directions": 8,
    "laplace_draws": 50,
    "nuts_warmup": 30,
    "nuts_samples": 40,
}


def test_clopper_pearson_matches_statsmodels():
    k = np.array([0, 3, 47, 50])
    lo, hi = profile.clopper_pearson(k, 50)
    want_lo, want_hi = proportion_confint(k, 50, alpha=0.05, method="beta")
    np.testing.assert_allclose(lo, np.nan_to_num(want_lo, nan=0.0), atol=1e-10)
    np.testing.assert_allclose(hi, np.nan_to_num(want_hi, nan=1.0), atol=1e-10)


def test_functionals_match_numpy_loops():
    case = set_coverage.make_case(cs.DEFAULT_CONFIG, "well_specified")
    game = case["model_game"]
    theta = np.array([0.3, -0.7])
    g = np.asarray(profile.functionals(jnp.asarray(theta), game.model, case["policy"]))
    u = np.einsum("hsabd,d->hsab", np.asarray(game.features), theta)
    nu = np_follower_response(np.asarray(game.transitions), u, float(game.eta))
    value = np_policy_value(
        np.asarray(game.transitions),
        np.asarray(game.leader_reward),
        game.initial_dist,
        nu,
        case["policy"],
    )
    np.testing.assert_allclose(g[:-1], nu.ravel(), atol=1e-12)
    np.testing.assert_allclose(g[-1], value, atol=1e-12)


def test_pseudo_true_theta_is_the_truth_for_a_well_specified_model():
    case = set_coverage.make_case(cs.DEFAULT_CONFIG, "well_specified")
    game = case["model_game"]
    nu = np.exp(np.asarray(jax.nn.log_softmax(game.eta * game.utility(), axis=-1)))
    got = profile.pseudo_true_theta(game, nu, case["behaviour"])
    np.testing.assert_allclose(got, game.theta, atol=1e-7)
    # the occupancy is a distribution over (s, a, b) at every step
    x = profile.response_occupancy(game, case["behaviour"], nu)
    np.testing.assert_allclose(x.sum(axis=(1, 2, 3)), 1.0, atol=1e-12)


def test_lr_ray_lengths_hit_the_radius():
    case = set_coverage.make_case(cs.DEFAULT_CONFIG, "well_specified")
    phi, eta = jnp.asarray(case["features"]), case["eta"]
    counts = profile.simulate_counts(
        case["true_game"], case["behaviour"], jax.random.split(jax.random.PRNGKey(0), 1), 80
    )[0]
    theta_hat, ll_hat, info, _ = profile.fit_counts(counts, phi, eta, 0.0)
    ll = lambda th: log_likelihood(th, Model(phi, eta), counts)
    rays = jnp.asarray(profile.directions(2, 6)) @ profile.whitener(info).T
    radii = jnp.array([1.0, 6.0])
    t = profile.lr_ray_lengths(ll, theta_hat, ll_hat, rays, radii, theta_cap=50.0)
    for k, beta in enumerate(radii):
        for j in range(rays.shape[0]):
            dev = 2 * (ll_hat - ll(theta_hat + t[k, j] * rays[j]))
            assert abs(float(dev) - float(beta)) < 1e-6


def _tiny_confidence_config(**extra):
    module = get_experiment("confidence_sets")
    over = {
        "seeds": 6,
        "batch_size": 6,
        "cases": ["well_specified", "near_deterministic"],
        "sample_sizes": [20],
        "sbc_replications": 6,
        "sbc_sample_size": 20,
        **TINY_SETS,
        **extra,
    }
    return load_config(module, overrides=over)


@pytest.mark.slow
def test_confidence_sets_runs_resumes_and_plots(tmp_path):
    config = _tiny_confidence_config()
    results = cs.run(config, tmp_path, progress=False)
    with np.load(results) as f:
        cov, lo, hi = f["coverage"], f["coverage_lo"], f["coverage_hi"]
        width = f["width"]
    assert cov.shape == (2, 1, 4, len(cs.TARGETS), 2)
    assert np.all((cov >= 0) & (cov <= 1))
    banded = ~np.isnan(lo)
    assert banded.any() and np.all(lo[banded] <= cov[banded] + 1e-12)
    assert np.all(cov[banded] <= hi[banded] + 1e-12)
    assert np.isfinite(width[:, :, :, cs.TARGETS.index("value")]).all()
    doc = json.loads((tmp_path / "results.json").read_text())
    assert doc["config"]["seeds"] == 6 and doc["summary"]["replications"] == 6
    # results.nc holds the same arrays, labelled: a dimension order or a coordinate that does
    # not match the npz axes fails here (levels are [0.8, 0.95], constructions wald lr laplace nuts)
    with xr.open_dataset(tmp_path / "results.nc", engine="h5netcdf") as ds:
        assert ds["coverage"].dims == ("case", "n_episodes", "construction", "target", "level")
        one = ds["coverage"].sel(
            case="near_deterministic",
            n_episodes=20,
            construction="nuts",
            target="value",
            level=0.95,
        )
        np.testing.assert_equal(float(one), cov[1, 0, 3, cs.TARGETS.index("value"), 1])
        np.testing.assert_array_equal(ds["width"].values, width)
        np.testing.assert_array_equal(ds["coverage_lo"].values, lo)

    # resuming recomputes nothing: the units are untouched
    # (one unit directory per batch, each with its one part: 2 cases x 1 n + 1 SBC batch)
    def stamps():
        return {p: p.stat().st_mtime_ns for p in (tmp_path / "units").glob("*/units/result.npz")}

    before = stamps()
    assert len(before) == len(cs.make_units(config)) == 3
    cs.run(config, tmp_path, progress=False)
    assert stamps() == before
    paths = cs.plot(tmp_path)
    names = {p.name for p in paths}
    assert {"calibration.png", "coverage_vs_n.png", "set_sizes.png", "sbc_ranks.png"} <= names
    assert "Clopper-Pearson" in (tmp_path / "tables.md").read_text()
    with pytest.raises(ConfigError, match="levels"):
        cs.run(_tiny_confidence_config(levels=[0.9]), tmp_path / "other", progress=False)


@pytest.mark.filterwarnings("ignore::bayes_qse.identification.IdentifiabilityWarning")
def test_posterior_inspection_writes_a_datatree_arviz_reads(tmp_path):
    import arviz_stats

    module = get_experiment("posterior_inspection")
    config = load_config(
        module,
        overrides={
            "n_episodes": 40,
            "num_warmup": 30,
            "num_samples": 40,
            "num_chains": 2,
            "laplace_samples": 50,
        },
    )
    pi.run(config, tmp_path, progress=False)
    nc = tmp_path / "posterior_seed0.nc"
    dt = xr.open_datatree(nc, engine="h5netcdf")
    theta = dt.posterior["theta"]
    assert theta.dims == ("chain", "draw", "feature") and theta.shape[:2] == (2, 40)
    assert dt.posterior["nu"].dims == ("chain", "draw", "hs", "leader_action", "follower_action")
    np.testing.assert_allclose(dt.posterior["nu"].sum("follower_action").values, 1.0, atol=1e-12)
    game = pi.named_game(config["game"])
    np.testing.assert_allclose(dt.constant_data["theta_true"].values, game.theta)
    summary = arviz_stats.summary(dt, var_names=["theta"])
    assert {"r_hat", "ess_bulk"} <= set(summary.columns) and len(summary) == game.feature_dim
    paths = pi.plot(tmp_path)
    assert {p.name for p in paths} >= {"trace.png", "rank.png", "responses.png", "summary.md"}


@pytest.mark.slow
def test_rationality_sweep_runs_with_the_same_seeds(tmp_path):
    module = get_experiment("rationality_sweep")
    config = load_config(
        module,
        overrides={
            "seeds": 2,
            "etas": [0.5, 20.0],
            "learners": ["greedy"],
            "episodes": 4,
            "chunk": 4,
            "width_replications": 6,
            "width_sample_size": 20,
            **TINY_SETS,
        },
    )
    results = rs.run(config, tmp_path, progress=False)
    with np.load(results) as f:
        final = f["final_regret"]
        width_nu = f["width_nu"]
    assert final.shape == (2, 1, 2)
    assert np.all(final >= -1e-9)
    assert np.isfinite(width_nu[:, [0, 1, 3, 4]]).all()
    _, online = rs.unit_groups(config)
    seeds = [[m["seed"] for _, m in load_parts(tmp_path, online[e, "greedy"])] for e in (0.5, 20.0)]
    assert seeds[0] == seeds[1] == [0, 1]
    assert {p.name for p in rs.plot(tmp_path)} >= {"sweep.png", "table.md"}


def test_rationality_sweep_report_reads_the_labelled_results(tmp_path):
    """The report reads one labelled dataset (``results.nc``, or rebuilt from a published
    folder's results.npz/json) and writes the published table.md byte for byte from either.
    Bug caught: a ``sel`` on the wrong label (a learner or construction column swapped, an
    eta row from another eta), an npz axis read under the wrong dimension name, or
    results.nc and the npz fallback disagreeing."""
    import shutil

    from bayes_qse.io import atomic_write_netcdf

    published = Path(__file__).resolve().parents[1] / "docs" / "results" / "rationality_sweep"
    old, new = tmp_path / "npz", tmp_path / "nc"
    old.mkdir()
    for name in ("results.npz", "results.json"):
        shutil.copy(published / name, old / name)
    rs.plot(old)
    want = (published / "table.md").read_text()
    assert (old / "table.md").read_text() == want
    ds = rs.load_results(old)
    assert ds["width_nu"].dims == ("eta", "construction")
    new.mkdir()
    atomic_write_netcdf(new / "results.nc", ds)
    rs.plot(new)
    assert (new / "table.md").read_text() == want


def test_confidence_sets_report_reads_the_labelled_results(tmp_path):
    """The confidence_sets report reads one labelled dataset (``results.nc``, or rebuilt from
    a published folder's results.npz/json) and writes the published ci_scale tables.md byte
    for byte from either; the rebuilt dataset gives back the published arrays and rows_95
    through ``confidence_arrays`` (the npz fallback is its exact inverse).  Bug caught: a
    ``sel`` on the wrong label (a case, construction or target column swapped, a level or
    sample size read at another one), an npz axis read under the wrong dimension name, an
    attribute the report states (the chosen cell, the paper radius' level, the SBC settings)
    lost in results.nc, or results.nc and the npz fallback disagreeing."""
    import shutil

    from bayes_qse.experiments.report import confidence_sets_tables, read_results
    from bayes_qse.io import atomic_write_netcdf

    published = (
        Path(__file__).resolve().parents[1] / "docs" / "results" / "confidence_sets" / "ci_scale"
    )
    old, new = tmp_path / "npz", tmp_path / "nc"
    old.mkdir()
    for name in ("results.npz", "results.json"):
        shutil.copy(published / name, old / name)
    paths = cs.plot(old)  # the figures too, from the published arrays
    assert {p.name for p in paths} >= {"calibration.png", "sbc_ranks.png", "tables.md"}
    want = (published / "tables.md").read_text()
    assert (old / "tables.md").read_text() == want
    ds = cs.load_results(old)
    assert ds["coverage"].dims == ("case", "n_episodes", "construction", "target", "level")
    arrays, doc = read_results(published)
    s = doc["summary"]
    cases = {c: {"theta_target": t} for c, t in s["theta_target"].items()}
    back = cs.confidence_arrays(ds, doc["config"], cases)
    for key, value in arrays.items():
        np.testing.assert_array_equal(back[key], value, err_msg=key)
    assert json.loads(json.dumps(back["rows_95"])) == s["rows_95"]
    new.mkdir()
    atomic_write_netcdf(new / "results.nc", ds)
    confidence_sets_tables(cs.load_results(new), new)
    assert (new / "tables.md").read_text() == want
