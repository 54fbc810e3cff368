"""The experiments' learner settings live under ``[learner]``, the table a sweep spec has
(issue 25, step 4), and the one-release shim reads the old flat form.

The oracle for the published runs is the manifest itself, read by hand: each learner setting
it names (retired names converted by hand, ``delta = 1 - confidence_level``,
``prior_scale = ridge ** -0.5``) and the learner's own default for every other one, never the
experiment's loading code.
"""

from __future__ import annotations

import dataclasses
import json
import warnings
from pathlib import Path

import pytest

from bayes_qse.errors import ConfigError
from bayes_qse.experiments import get_experiment, load_config, merge_config
from bayes_qse.learners.config import LEARNER_VARIANTS, LearnerConfig, OfflineLearnerConfig

RESULTS = Path(__file__).resolve().parents[1] / "docs" / "results"


def _quiet_load(module, **kw):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        return load_config(module, **kw)


# ---------------------------------------------------------------------------------------
# The old flat form and [learner] resolve to the same settings
# ---------------------------------------------------------------------------------------

FLAT_ONLINE = """
episodes = 20
confidence_level = 0.8
num_draws = 4
radius = "theory"
farsighted_refit = "switching"
[linear]
eta = 1.5
"""

NESTED_ONLINE = """
episodes = 20
[linear]
eta = 1.5
[learner]
delta = 0.19999999999999996  # 1 - 0.8
num_draws = 4
radius = "theory"
farsighted_refit = "switching"
"""

FLAT_SECURITY = "rounds = 3\nn_draws = 4\nonline_starts = 1\nonline_learning_rate = 0.01\n"
NESTED_SECURITY = "rounds = 3\n[learner]\nnum_draws = 4\nn_starts = 1\nlearning_rate = 0.01\n"
FLAT_OFFLINE = 'sizes = [4]\nridge = 4.0\nrule = "cvar"\nlearners = ["plugin"]\n'
NESTED_OFFLINE = 'sizes = [4]\nlearners = ["plugin"]\n[learner]\nprior_scale = 0.5\nrule = "cvar"\n'


@pytest.mark.parametrize(
    ("experiment", "flat", "nested"),
    [
        ("online_regret", FLAT_ONLINE, NESTED_ONLINE),
        ("offline_suboptimality", FLAT_OFFLINE, NESTED_OFFLINE),
        ("security_games", FLAT_SECURITY, NESTED_SECURITY),
    ],
    ids=["online_regret", "offline_suboptimality", "security_games"],
)
def test_an_old_flat_config_and_the_learner_table_give_the_same_settings(
    tmp_path, experiment, flat, nested
):
    """``run --config`` with the previous release's flat TOML and with the same settings
    under ``[learner]`` (retired names converted by hand) load to one config, the flat one
    with a DeprecationWarning naming the moved keys.  Fails if the shim drops a flat key, puts
    it elsewhere, converts a retired name differently, or moves silently."""
    module = get_experiment(experiment)
    (tmp_path / "flat.toml").write_text(flat, encoding="utf-8")
    (tmp_path / "nested.toml").write_text(nested, encoding="utf-8")
    with pytest.warns(DeprecationWarning, match=r"top level \(.*\) are read under \[learner\]"):
        old = load_config(module, tmp_path / "flat.toml")
    with warnings.catch_warnings():
        warnings.simplefilter("error", DeprecationWarning)  # the new form warns about nothing
        new = load_config(module, tmp_path / "nested.toml")
    assert old == new
    assert not set(old["learner"]) - set(module.DEFAULT_CONFIG["learner"])
    assert not set(old) - set(module.DEFAULT_CONFIG)


def test_a_setting_given_flat_and_under_learner_is_refused():
    """Fails if one of the two silently wins."""
    module = get_experiment("online_regret")
    with pytest.raises(ConfigError, match=r"delta given both at the top level and under"):
        load_config(module, overrides={"delta": 0.2, "learner": {"delta": 0.1}})


def test_the_shim_touches_only_experiments_with_a_learner_table():
    """``prior_scale`` is a top-level setting of the inference experiments (no learner):
    fails if the shim moves it (the experiment would lose its prior)."""
    base = {"seeds": 1, "prior_scale": 1.0}
    assert merge_config(base, {"prior_scale": 2.0}) == {"seeds": 1, "prior_scale": 2.0}
    module = get_experiment("posterior_inspection")
    assert "learner" not in module.DEFAULT_CONFIG
    assert load_config(module, overrides={"prior_scale": 3.0})["prior_scale"] == 3.0


# ---------------------------------------------------------------------------------------
# Every published manifest reruns with the settings it ran with
# ---------------------------------------------------------------------------------------


def _manifests(experiment):
    out = []
    for path in sorted(RESULTS.glob("**/manifest.json")):
        manifest = json.loads(path.read_text(encoding="utf-8"))
        if manifest["experiment"] == experiment:
            out.append(pytest.param(manifest["config"], id=str(path.parent.relative_to(RESULTS))))
    return out


def _by_hand(flat, cls, refit=None):
    """The settings a flat manifest names, read by hand: its own value of each field (the
    retired names converted as the release notes say), the learner's default otherwise.  A
    manifest written since the settings moved under ``[learner]`` names them in that table."""
    named = dict(flat)
    named.update(named.pop("learner", None) or {})
    if "confidence_level" in named:
        named["delta"] = 1.0 - named["confidence_level"]
    if "ridge" in named:
        named["prior_scale"] = named["ridge"] ** -0.5
    for old, new in (("n_draws", "num_draws"), ("online_starts", "n_starts")):
        if old in named:
            named[new] = named[old]
    if "online_steps" in named:
        named["steps"] = named["online_steps"]
    out = {}
    for f in dataclasses.fields(cls):
        out[f.name] = named.get(f.name, f.default)
    if refit is not None:
        out["refit"] = named.get(refit, "every")
        if out["refit"] != "switching":  # the schedule's settings apply when it switches
            out["switch_factor"], out["max_policies"] = 2.0, 512
    return out


@pytest.mark.parametrize("flat", _manifests("online_regret"))
def test_online_regret_manifests_rerun_with_their_settings(flat):
    """Every unit of a published ``online_regret`` run, reloaded as ``reproduce.py`` reloads
    it, runs under the LearnerConfig its flat manifest names (``capacity`` = the unit's
    episodes; the farsighted games under ``farsighted_refit``).  Fails if the shim loses or
    misplaces a flat key, or the experiment reads a learner setting from elsewhere."""
    from bayes_qse.experiments.online_regret import make_units
    from bayes_qse.experiments.online_units import unit_learner_config

    config = _quiet_load(get_experiment("online_regret"), full=True, overrides=flat)
    for unit in make_units(config):
        farsighted = unit.game.startswith("farsighted")
        want = _by_hand(flat, LearnerConfig, "farsighted_refit" if farsighted else "refit")
        want["capacity"] = unit.T
        got = unit_learner_config(unit.config, farsighted, unit.T)
        assert got.to_dict() == want, unit.key


@pytest.mark.parametrize("flat", _manifests("rationality_sweep"))
def test_rationality_sweep_manifest_reruns_with_its_settings(flat):
    """The sweep's online units run under the settings its flat manifest names, and its
    set-width part uses the same ``prior_scale``.  Fails as the test above, or if the width
    part loses the learner's prior."""
    from bayes_qse.experiments import rationality_sweep as rs
    from bayes_qse.experiments.online_units import unit_learner_config

    config = _quiet_load(get_experiment("rationality_sweep"), full=True, overrides=flat)
    widths, online = rs.unit_groups(config)
    for unit in online.values():
        want = {**_by_hand(flat, LearnerConfig, "refit"), "capacity": unit.T}
        assert unit_learner_config(unit.config, False, unit.T).to_dict() == want, unit.key
    prior_scale = _by_hand(flat, LearnerConfig)["prior_scale"]  # flat, or under [learner]
    assert {w.config["prior_scale"] for w in widths} == {prior_scale}


@pytest.mark.parametrize("flat", _manifests("offline_suboptimality"))
def test_offline_manifests_rerun_with_their_settings(flat):
    """Every unit of a published ``offline_suboptimality`` run hands its learners the
    OfflineLearnerConfig its flat manifest names (``ridge = 1`` read as ``prior_scale = 1``).
    Fails if a flat key is lost or misplaced by the shim."""
    from bayes_qse.experiments.offline_suboptimality import _learner_settings, make_units
    from bayes_qse.learners.offline import learner_config

    config = _quiet_load(get_experiment("offline_suboptimality"), full=True, overrides=flat)
    want = _by_hand(flat, OfflineLearnerConfig)
    for unit in make_units(config):
        assert learner_config(_learner_settings(unit.config)).to_dict() == want, unit.key


@pytest.mark.parametrize("flat", _manifests("security_games"))
def test_security_manifest_reruns_with_its_settings(flat):
    """The repeated game's defenders get the SecurityLearnerConfig the flat manifest names
    (``n_draws``, ``online_starts``, ``online_steps`` under their fields' names, the
    experiment's ``prior_scale``).  Fails if a renamed flat key is dropped or misplaced."""
    from bayes_qse.experiments.security_games import online_settings
    from bayes_qse.security.online import SecurityLearnerConfig

    config = _quiet_load(get_experiment("security_games"), full=True, overrides=flat)
    assert online_settings(config).to_dict() == _by_hand(flat, SecurityLearnerConfig)
    assert config["prior_scale"] == flat["prior_scale"]  # every study's prior


# ---------------------------------------------------------------------------------------
# Reach and shape
# ---------------------------------------------------------------------------------------


def test_capacity_is_the_units_episodes():
    """``capacity``, the one LearnerConfig field without a key, follows the episodes (the
    buffer holds every episode a unit plays).  Fails if a unit runs with the default 1000
    after more episodes, dropping data from its likelihood."""
    from bayes_qse.experiments.online_regret import make_units
    from bayes_qse.experiments.online_units import unit_learner_config

    module = get_experiment("online_regret")
    config = load_config(module, overrides={"episodes": 1200, "chunk": 600})
    unit = make_units(config)[0]
    assert unit_learner_config(unit.config, False, unit.T).capacity == 1200


def test_each_game_kind_gets_its_refit_schedule():
    """``learner.refit`` schedules the myopic games, ``learner.farsighted_refit`` the
    farsighted ones (with the switching settings only where it switches).  Fails if one
    schedule is read for both kinds (the --long preset would refit every episode)."""
    from bayes_qse.experiments.online_units import unit_learner_config

    config = load_config(
        get_experiment("online_regret"),
        overrides={"learner": {"farsighted_refit": "switching", "switch_factor": 3.0}},
    )
    myopic = unit_learner_config(config, False, 10)
    farsighted = unit_learner_config(config, True, 10)
    assert (myopic.refit, myopic.switch_factor) == ("every", 2.0)
    assert (farsighted.refit, farsighted.switch_factor) == ("switching", 3.0)


def test_the_sweep_specs_learner_table_is_run_configs():
    """A sweep spec's ``[learner]`` accepts exactly online_regret's ``[learner]`` keys and its
    units carry them in the same table.  Fails if the two shapes drift apart (a key one takes
    and the other refuses, or a spec's value that does not reach the unit's table)."""
    from bayes_qse.experiments.online_regret import DEFAULT_CONFIG
    from bayes_qse.experiments.online_units import LEARNER_KEYS, REFIT_KEYS
    from bayes_qse.sweeps import expand

    assert set(DEFAULT_CONFIG["learner"]) == {*LEARNER_KEYS, *REFIT_KEYS}
    spec = {
        "grid": {"game": ["linear"], "learner": ["greedy"], "T": [4], "seeds": [0]},
        "learner": {"num_draws": 3, "theta_bound": 4.0},
    }
    (unit,) = expand(spec).units
    assert unit.config["learner"] == {**DEFAULT_CONFIG["learner"], **spec["learner"]}
    assert not set(unit.config) & {*LEARNER_KEYS, *REFIT_KEYS}


def test_every_variant_overrides_fields_of_its_learners_settings():
    """The one variant table: each online variant's overrides are LearnerConfig fields, each
    offline one's OfflineLearnerConfig fields, and the two registries see exactly their own.
    Fails on a variant whose override names no setting (it would raise only when built) or a
    variant listed under the wrong kind of learner."""
    from bayes_qse.learners.offline import OFFLINE_LEARNERS, OFFLINE_VARIANTS, get_learner
    from bayes_qse.learners.online import ALL_LEARNERS, LEARNERS, ONLINE_VARIANTS

    assert {*ONLINE_VARIANTS, *OFFLINE_VARIANTS} == set(LEARNER_VARIANTS)
    assert not set(ONLINE_VARIANTS) & set(OFFLINE_VARIANTS)
    for variants, bases, cls in (
        (ONLINE_VARIANTS, LEARNERS, LearnerConfig),
        (OFFLINE_VARIANTS, OFFLINE_LEARNERS, OfflineLearnerConfig),
    ):
        fields = {f.name for f in dataclasses.fields(cls)}
        for name, (base, overrides) in variants.items():
            assert base in bases and set(overrides) <= fields, name
            cls.from_mapping(overrides)  # valid values
    assert set(ONLINE_VARIANTS) <= set(ALL_LEARNERS)
    assert not set(OFFLINE_VARIANTS) & set(ALL_LEARNERS)
    for name in OFFLINE_VARIANTS:
        get_learner(name)


@pytest.mark.parametrize("module", ["online", "offline"])
def test_the_old_variant_tables_warn_and_point_to_the_new(module):
    """``learners.online.LEARNER_VARIANTS`` and ``learners.offline.LEARNER_VARIANTS`` still
    work for one release with a DeprecationWarning; fails if the alias is gone, silent, or
    hands the other kind's variants."""
    import importlib

    mod = importlib.import_module(f"bayes_qse.learners.{module}")
    new = "ONLINE_VARIANTS" if module == "online" else "OFFLINE_VARIANTS"
    with pytest.warns(DeprecationWarning, match=new):
        table = mod.LEARNER_VARIANTS
    assert table is getattr(mod, new)


def test_an_infinite_default_can_be_written_back(tmp_path):
    """``learner.mle_prior_scale = inf`` (the default, the unpenalised MLE) as ``run --help``
    writes it, and as a manifest holds it (JSON's ``Infinity``), loads; a finite setting
    still refuses ``inf``.  Fails if the type check calls the default itself invalid (a run's
    own manifest would not reload)."""
    module = get_experiment("online_regret")
    (tmp_path / "c.toml").write_text("[learner]\nmle_prior_scale = inf\n", encoding="utf-8")
    assert load_config(module, tmp_path / "c.toml")["learner"]["mle_prior_scale"] == float("inf")
    manifest = json.loads('{"learner": {"mle_prior_scale": Infinity}}')
    assert load_config(module, overrides=manifest)["learner"]["mle_prior_scale"] == float("inf")
    with pytest.raises(ConfigError, match=r"learner\.theta_bound must be finite"):
        load_config(module, overrides={"learner": {"theta_bound": float("inf")}})
