"""A sweep spec is an experiment's ``run --config`` file plus ``[grid]`` (issue 25, step 4).

An online spec's game tables are top-level ``[<game>]`` tables, as in ``run online_regret
--config`` and its manifests; an offline spec's settings are top-level keys, as in ``run
offline_suboptimality --config``.  The previous release's forms (``[games.<name>]``,
``[settings]``) are read for one release with a DeprecationWarning, and give the same units,
the same fingerprint and the same directory as the new form.
"""

from __future__ import annotations

import copy
import hashlib
import json
import re
import tomllib
import warnings
from pathlib import Path

import jax
import numpy as np
import pytest

from bayes_qse import cli
from bayes_qse.errors import ConfigError
from bayes_qse.experiments import get_experiment, load_config
from bayes_qse.experiments.online_units import online_experiment_game
from bayes_qse.settings import RETIRED_MESSAGE
from bayes_qse.sweeps import bind, expand, load_spec, run_sweep
from bayes_qse.sweeps.store import read_sweep

ROOT = Path(__file__).resolve().parents[1]
SWEEPS = ROOT / "docs" / "sweeps"
GRID = {"game": ["linear"], "learner": ["uniform"], "T": [4], "seeds": [0, 1]}
OFFLINE_GRID = {"game": ["linear"], "behaviour": ["uniform"], "seeds": [0]}
#: The fingerprints the previous release (commit 70474d0, the old forms of these files)
#: computed: a directory it wrote must keep resuming.
PREVIOUS_FINGERPRINTS = {
    "online_regret_myopic": "ec4a536a98fcce71",
    "online_regret_farsighted": "66a19e9acf17c884",
    "offline_suboptimality": "b2c704c4b4899c6b",
    "quick": "ba7e95aebc2c0246",
}


def _old_form(spec):
    """``spec`` (new form) written in the previous release's form, by hand: the online game
    tables under ``games``, the offline settings under ``settings``."""
    spec = copy.deepcopy(spec)
    if spec.get("kind") == "offline":
        keep = ("kind", "name", "grid", "learner")
        settings = {k: spec.pop(k) for k in list(spec) if k not in keep}
        return {**spec, "settings": settings} if settings else spec
    games = {k: spec.pop(k) for k in list(spec) if isinstance(spec[k], dict) and k != "grid"}
    learner = games.pop("learner", None)
    if learner is not None:
        spec["learner"] = learner
    return {**spec, "games": games} if games else spec


def _quiet_expand(spec):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        return expand(spec)


def _previous_fingerprint(old_spec):
    """The previous release's fingerprint, re-implemented: sha256 of the spec less ``name``
    and ``grid.seeds``, as sorted JSON, first 16 hex digits."""
    spec = copy.deepcopy(old_spec)
    spec.pop("name", None)
    spec["grid"].pop("seeds", None)
    return hashlib.sha256(json.dumps(spec, sort_keys=True).encode()).hexdigest()[:16]


@pytest.mark.parametrize("name", sorted(PREVIOUS_FINGERPRINTS))
def test_the_published_specs_give_one_sweep_in_either_form(name):
    """Bug caught: the new form hashed as written (every directory of the previous release
    refused, results' fingerprints changed), a game table or an offline setting read in one
    form and dropped or defaulted in the other (other units), the shim changing the order
    of the grid (other cells)."""
    new = load_spec(SWEEPS / f"{name}.toml")
    assert "games" not in new and "settings" not in new  # the published files: new form
    old = _old_form(new)
    with warnings.catch_warnings():
        warnings.simplefilter("error", DeprecationWarning)
        a = expand(new)  # the new form warns about nothing
    b = _quiet_expand(old)
    assert repr(a.units) == repr(b.units)
    assert a.cells == b.cells and a.axes == b.axes and a.seeds == b.seeds
    assert a.fingerprint == b.fingerprint == PREVIOUS_FINGERPRINTS[name]
    assert a.fingerprint == _previous_fingerprint(old)
    assert a.spec == b.spec == json.loads(json.dumps(new, sort_keys=True))  # normalised: new


def test_a_directory_of_the_old_form_resumes_under_the_new_form(tmp_path):
    """Bug caught: a directory bound by an old-form spec refused by the same spec in the new
    form (or the reverse), its finished seeds recomputed, or ``sweep.json`` left in the old
    form (``gather`` would warn on every read); another spec still refused."""
    new = {"chunk": 2, "grid": GRID, "linear": {"n_states": 3, "eta": 1.5}}
    old = _old_form(new)
    out = tmp_path / "s"
    with pytest.warns(DeprecationWarning, match=r"\[games\] is read as \[linear\]"):
        run_sweep(old, out, progress=False)
    # sweep.json as the previous release wrote it: the spec as written, in the old form
    record = json.loads((out / "sweep.json").read_text())
    record["spec"] = json.loads(json.dumps(old, sort_keys=True))
    (out / "sweep.json").write_text(json.dumps(record))
    saved = sorted(out.glob("units/*/units/seed*.npz"))
    assert len(saved) == 2
    stamps = [p.stat().st_mtime_ns for p in saved]
    results = (out / "results.nc").read_bytes()
    with warnings.catch_warnings():
        warnings.simplefilter("error", DeprecationWarning)
        run_sweep(new, out, progress=False)
    assert [p.stat().st_mtime_ns for p in sorted(out.glob("units/*/units/seed*.npz"))] == stamps
    assert read_sweep(out)["spec"] == json.loads(json.dumps(new))
    assert (out / "results.nc").read_bytes() == results  # the same numbers gathered
    other = {**new, "linear": {"n_states": 4, "eta": 1.5}}
    with pytest.raises(ConfigError, match="different spec"):
        bind(expand(other), out)
    with pytest.raises(ConfigError, match="different spec"):
        bind(_quiet_expand(_old_form(other)), out)


@pytest.mark.parametrize(
    "old, words",
    [
        ({"chunk": 2, "grid": GRID, "games": {"linear": {"n_states": 3}}}, ["[games]", "[linear]"]),
        (
            {"kind": "offline", "grid": OFFLINE_GRID, "settings": {"sizes": [10, 20]}},
            ["[settings]", "top level", "offline_suboptimality"],
        ),
    ],
)
def test_the_old_forms_warn_naming_the_new_form(old, words):
    """Bug caught: an old form read silently (nothing tells the user to move it before the
    shim goes), a warning the ``bayes-qse`` command hides (it shows only
    ``RETIRED_MESSAGE``), or one that does not say where the settings go now."""
    with pytest.warns(DeprecationWarning) as caught:
        expand(old)
    (message,) = [str(w.message) for w in caught if str(w.message).startswith("spec: [")]
    assert re.match(RETIRED_MESSAGE, message)
    for word in words:
        assert word in message, (word, message)


def _paste(config_path, games, grid=None):
    """A sweep spec made of the game tables of ``config_path`` (a run --config file),
    unchanged, and a grid over ``games``."""
    tables = read_tables(config_path)
    grid = grid or {"game": games, "learner": ["greedy"], "T": [4], "seeds": [0]}
    return {"chunk": 2, "grid": grid, **{g: tables[g] for g in games}}


def read_tables(path):
    with open(path, "rb") as fh:
        text = tomllib.load(fh)
    return {k: v for k, v in text.items() if isinstance(v, dict) and k != "learner"}


def _experiment_config(path):
    with warnings.catch_warnings():  # a manifest of the previous release: read by its shims
        warnings.simplefilter("ignore", DeprecationWarning)
        return load_config(get_experiment("online_regret"), path=path)


def _same_game(a, b):
    la, lb = jax.tree_util.tree_leaves(a), jax.tree_util.tree_leaves(b)
    assert len(la) == len(lb)
    for x, y in zip(la, lb, strict=True):
        np.testing.assert_array_equal(np.asarray(x), np.asarray(y))


def test_the_game_tables_of_a_run_config_file_paste_into_a_spec(tmp_path):
    """experiments/online_regret_large.toml's [large] table, pasted unchanged into a sweep
    spec, gives the unit the settings and the game ``run online_regret --config`` gives (its
    own load_config and game builder, the independent side); the same with the table's
    values changed (the file's equal the defaults, so a table read and then dropped would
    pass on the file alone).  Bug caught: a top-level game table ignored or read under
    another name, ``large`` refused by the sweep's grid, a value typed differently."""
    path = ROOT / "experiments" / "online_regret_large.toml"
    changed = tmp_path / "large.toml"
    changed.write_text(
        path.read_text().replace("n_sites = 20", "n_sites = 12").replace("eta = 2.0", "eta = 1.25")
    )
    for config_path in (path, changed):
        want = _experiment_config(config_path)
        (unit,) = expand(_paste(config_path, ["large"])).units
        assert unit.config["large"] == want["large"]
        _same_game(
            online_experiment_game("large", unit.config), online_experiment_game("large", want)
        )
    assert want["large"]["n_sites"] == 12 and want["large"]["eta"] == 1.25


def test_the_game_tables_of_a_published_manifest_paste_into_a_spec():
    """Every game table of online_regret's published manifest (its config, the previous
    release's file), pasted into a spec over its games, gives each unit that game's table as
    the experiment reads the manifest.  Bug caught: a game read under the defaults (the
    published games differ from them), ``farsighted-random`` (a dashed key) lost."""
    manifest = json.loads((ROOT / "docs/results/online_regret/manifest.json").read_text())
    games = manifest["config"]["games"]
    want = _experiment_config_from_mapping(manifest["config"])
    spec = {"chunk": 50, "grid": {"game": games, "learner": ["greedy"], "T": [50], "seeds": [0]}}
    spec.update({g: manifest["config"][g] for g in games})
    units = {u.game: u for u in expand(spec).units}
    assert set(units) == set(games)
    defaults = get_experiment("online_regret").DEFAULT_CONFIG
    assert any(want[g] != defaults[g] for g in games)  # the check can see a table dropped
    for game in games:
        assert units[game].config[game] == want[game], game


def _experiment_config_from_mapping(values):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        return load_config(get_experiment("online_regret"), full=True, overrides=values)


def _cli(argv, capsys):
    code = cli.main([str(a) for a in argv])
    captured = capsys.readouterr()
    return code, [line for line in captured.err.splitlines() if line.strip()]


ONLINE = '[grid]\ngame = ["linear"]\nlearner = ["uniform"]\nT = [4]\nseeds = [0]\n'
OFFLINE = 'kind = "offline"\n[grid]\ngame = ["linear"]\nbehaviour = ["uniform"]\nseeds = [0]\n'


@pytest.mark.parametrize(
    "text, pattern",
    [
        # a misspelt game table: not a setting of the experiment
        (ONLINE + "[lnear]\nn_states = 3\n", r"top level: unknown key.*lnear"),
        # a table for a game the grid does not run: its settings would silently not apply
        (ONLINE + "[tabular]\nn_states = 3\n", r"spec: tabular: .*not in grid\.game"),
        (OFFLINE + "[tempting]\neta = 1.0\n", r"spec: tempting: .*not in grid\.game"),
        # a bad value, through the experiment's typed merge
        (ONLINE + '[linear]\nn_states = "three"\n', r"linear\.n_states must be an integer"),
        (ONLINE + "[linear]\nn_sates = 3\n", r"unknown key 'linear\.n_sates'"),
        ('sizes = ["ten"]\n' + OFFLINE, r"sizes\[0\] must be an integer"),
        # a run --config file's list of games pasted too: the grid sets it
        ('games = ["linear"]\n' + ONLINE, r"spec: games: .*grid\.game"),
        ("seeds = 4\n" + OFFLINE, r"spec: seeds: .*grid\.seeds"),
        # a top-level setting written after [grid] (TOML reads it as grid's)
        (ONLINE + "known_model = true\n", r"grid\.known_model: not a grid axis.*above"),
        (OFFLINE + "sizes = [10]\n", r"grid\.sizes: not a grid axis"),
        # one setting in both forms
        (ONLINE + "[linear]\neta = 1.0\n[games.linear]\neta = 2.0\n", r"linear given both"),
        ("sizes = [10]\n" + OFFLINE + "[settings]\nsizes = [20]\n", r"sizes given both"),
        (ONLINE + "[games.lnear]\neta = 1.0\n", r"games\.lnear: unknown game"),
    ],
)
def test_a_mistake_stops_in_one_line_before_anything_runs(tmp_path, capsys, text, pattern):
    """Bug caught: a misplaced, misspelt or mistyped setting run under a default (or found
    when a unit runs), a traceback, an exit status other than 2, or a message that does not
    name the key."""
    spec = tmp_path / "spec.toml"
    spec.write_text(text)
    code, err = _cli(["sweep", spec, "--out", tmp_path / "o", "--no-progress"], capsys)
    assert code == 2 and len(err) == 1, err
    assert err[0].startswith("bayes-qse: error: spec: "), err
    assert re.search(pattern, err[0]), err[0]
    assert not (tmp_path / "o").exists()


def test_the_howto_specs_are_in_the_new_form_and_expand():
    """Bug caught: docs/howto_sweeps.md showing a form the sweep refuses, or the old form
    (which warns), to a user copying it."""
    text = (ROOT / "docs" / "howto_sweeps.md").read_text()
    blocks = re.findall(r"```toml\n(.*?)```", text, re.S)
    assert len(blocks) == 2
    with warnings.catch_warnings():
        warnings.simplefilter("error", DeprecationWarning)
        kinds = [expand(tomllib.loads(block)).kind for block in blocks]
    assert kinds == ["online", "offline"]
