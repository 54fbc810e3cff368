"""security_games on the unit engine (one :class:`SecurityUnit` per seed)."""

from __future__ import annotations

import numpy as np
import pytest

from bayes_qse.experiments import security_games as sg
from bayes_qse.run_options import ENGINE

TINY = {
    "n_targets": 3,
    "resources": 1.0,
    "sample_sizes": [10],
    "plan_starts": 2,
    "plan_steps": 20,
    "rounds": 3,
    "learners": ["greedy"],
    "num_samples": 20,
    "learner": {"num_draws": 4, "n_starts": 1, "steps": 5},
    "planning_sizes": [10],
}


def _config(**over):
    return {**sg.DEFAULT_CONFIG, **TINY, **over}


def test_one_unit_per_seed_bound_to_its_settings():
    """Bug caught: a unit keyed by its place in the list (adding seeds would then rename
    them), or a unit's directory bound to the seed list (growing it would refuse to resume)."""
    assert "security_games" in ENGINE
    units = sg.make_units(_config(seeds=2, base_seed=5))
    assert [(u.key, u.seed) for u in units] == [("seed5", 5), ("seed6", 6)]
    one = sg.make_units(_config(seeds=1, base_seed=5))[0]
    assert one.store_config() == units[0].store_config()
    assert units[0].store_config() != sg.make_units(_config(n_targets=4))[0].store_config()


@pytest.mark.slow
def test_a_seed_gives_the_same_numbers_alone_resumed_or_in_a_pool(tmp_path):
    """Bug caught: a seed's numbers depending on the other seeds, on resumption (a run grown
    from 1 to 2 seeds) or on the process that runs it (a pool of 2 workers)."""
    both = sg.run(_config(seeds=2), tmp_path / "both", progress=False)
    alone = sg.run(_config(seeds=1, base_seed=1), tmp_path / "alone", progress=False)
    sg.run(_config(seeds=1), tmp_path / "grown", progress=False)
    grown = sg.run(_config(seeds=2), tmp_path / "grown", progress=False)
    pool = sg.run(_config(seeds=2), tmp_path / "pool", progress=False, workers=2)
    with np.load(both) as a, np.load(alone) as b, np.load(grown) as c, np.load(pool) as d:
        assert a["regret"].shape == (2, 1, 3)
        for key in ("err_mle", "loss_mean", "regret", "plan_loss_quantile", "best_value"):
            np.testing.assert_array_equal(a[key][1], b[key][0], err_msg=key)
            np.testing.assert_array_equal(a[key], c[key], err_msg=key)
            np.testing.assert_array_equal(a[key], d[key], err_msg=key)
