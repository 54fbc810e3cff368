"""posterior_inspection on the unit engine (one :class:`InspectionUnit` per seed) and its
labelled results (``results.nc``)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import xarray as xr

from bayes_qse.experiments import posterior_inspection as pi
from bayes_qse.experiments.store import RunStore
from bayes_qse.run_options import ENGINE

RESULTS = Path(__file__).resolve().parents[1] / "docs" / "results"
TINY = {
    "n_episodes": 40,
    "num_warmup": 30,
    "num_samples": 40,
    "num_chains": 2,
    "laplace_samples": 50,
}


def _config(**over):
    return {**pi.DEFAULT_CONFIG, **TINY, **over}


def test_one_unit_per_seed_bound_to_what_its_posterior_depends_on():
    """Bug caught: a unit keyed by its place in the list (adding seeds would rename them), a
    unit's directory bound to the seed list or to the ``states`` (which only the driver's
    DataTree uses: growing the seeds or changing the states would then refuse to resume), or
    not bound to a setting the posterior depends on."""
    assert "posterior_inspection" in ENGINE
    units = pi.make_units(_config(seeds=2, base_seed=5))
    assert [(u.key, u.seed, u.kind) for u in units] == [
        ("seed5", 5, "inspection"),
        ("seed6", 6, "inspection"),
    ]
    one = pi.make_units(_config(seeds=1, base_seed=5, states=[[0, 0]]))[0]
    assert one.store_config() == units[0].store_config()
    for key, value in (("n_episodes", 41), ("num_chains", 3), ("prior_scale", 2.0)):
        other = pi.make_units(_config(seeds=2, base_seed=5, **{key: value}))[0]
        assert other.store_config() != units[0].store_config(), key


@pytest.mark.parametrize("run", ["full", "ci_scale"])
def test_the_labelled_results_of_a_published_folder_give_back_its_arrays(run):
    """Bug caught: ``load_inspection`` (the report's reader of a folder without ``results.nc``)
    or ``inspection_arrays`` (the published npz read off the labelled results) moving an
    axis, dropping an array or naming another seed's DataTree."""
    folder = RESULTS / "posterior_inspection" / run
    ds = pi.load_inspection(folder)
    assert ds["theta_nuts"].dims == ("seed", "chain", "draw", "feature")
    assert ds["theta_laplace"].dims == ("seed", "laplace_draw", "feature")
    got = pi.inspection_arrays(ds)
    doc = json.loads((folder / "results.json").read_text())["summary"]
    with np.load(folder / "results.npz") as f:
        assert set(f.files) < set(got)
        for key in f.files:
            np.testing.assert_array_equal(got[key], f[key], err_msg=key)
    for key in ("divergences", "nuts_warnings", "netcdf"):
        assert got[key] == doc[key], key


def test_restart_removes_the_labelled_results(tmp_path):
    """Bug caught: ``--restart`` leaving the previous run's ``results.nc``, which the report
    then reads if the new run stops before writing its own."""
    RunStore(tmp_path, pi.NAME, _config()).close()
    (tmp_path / "results.nc").write_bytes(b"old")
    RunStore(tmp_path, pi.NAME, _config(), resume=False).close()
    assert not (tmp_path / "results.nc").exists()


_PER_SEED = ("theta_nuts", "diverging", "theta_laplace", "theta_mle", "mle_std_err", "r_hat")


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore::bayes_qse.identification.IdentifiabilityWarning")
@pytest.mark.filterwarnings("ignore::bayes_qse.posterior.PosteriorDiagnosticsWarning")
def test_a_seed_gives_the_same_numbers_alone_resumed_or_in_a_pool(tmp_path):
    """Bug caught: a seed's numbers depending on the other seeds or on resumption (a run
    grown from 1 to 2 seeds computes seed 1 alone), or on the process that runs it (a pool
    of 2 workers); ``results.nc`` with the seeds in another order, ``results.npz`` not the
    first seed's, a DataTree built by the driver from other draws than the unit's."""
    both = pi.run(_config(seeds=2), tmp_path / "both", progress=False)
    pi.run(_config(seeds=1), tmp_path / "grown", progress=False)
    pi.run(_config(seeds=2), tmp_path / "grown", progress=False)
    pi.run(_config(seeds=2), tmp_path / "pool", progress=False, workers=2)
    a = pi.load_inspection(tmp_path / "both")
    assert list(a["seed"].values) == [0, 1] and a["theta_nuts"].shape == (2, 2, 40, 4)
    for key in _PER_SEED:
        for other in ("grown", "pool"):
            got = pi.load_inspection(tmp_path / other)[key]
            np.testing.assert_array_equal(a[key], got, err_msg=f"{key} {other}")
    assert not np.array_equal(a["theta_nuts"].sel(seed=0), a["theta_nuts"].sel(seed=1))
    with np.load(both) as f:
        for key in ("theta_nuts", "theta_laplace", "r_hat", "ess"):
            np.testing.assert_array_equal(f[key], a[key].sel(seed=0), err_msg=key)
    for seed in (0, 1):
        with xr.open_datatree(tmp_path / "both" / pi.netcdf_name(seed)) as dt:
            draws = a.sel(seed=seed)
            np.testing.assert_array_equal(dt["posterior"]["theta"], draws["theta_nuts"])
            np.testing.assert_array_equal(dt["sample_stats"]["diverging"], draws["diverging"])
            np.testing.assert_array_equal(dt["constant_data"]["theta_mle"], draws["theta_mle"])
