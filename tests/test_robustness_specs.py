"""Robustness of the configurations (issue 23): one validation path for ``run --config``, the
sweep specs and the experiment TOMLs; no write over what a command does not own.

Every case below must exit with status 2 and one stderr line naming the field, before any
unit runs (the experiments' ``run`` and the sweep engine's ``run_units`` are booby-trapped,
so a check that comes late -- or never -- fails here as an internal error, exit 1).  The
case tables:

- ``RUN_TYPE_CASES``: every setting of every experiment (generated from its
  ``DEFAULT_CONFIG``) given a value of the wrong type in a ``--config`` TOML;
- ``SPEC_TYPE_CASES``: every setting a sweep spec can carry (top level, the ``[<game>]``
  tables, ``[learner]``, an offline spec's top-level settings: a ``run --config`` file's
  form) given a value of the wrong type;
- ``SPEC_VALUE_CASES`` / ``RUN_VALUE_CASES``: values of the right type that cannot run
  (sizes beyond memory, seeds beyond 32 bits, negative seeds, a bad second game);
- ``FILE_CASES``: unreadable, non-UTF-8, directory, empty and binary files as specs/configs.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from bayes_qse import cli
from bayes_qse.experiments import EXPERIMENTS, get_experiment

# ---------------------------------------------------------------------------------------
# Helpers
# ---------------------------------------------------------------------------------------


def run_cli(argv, capsys):
    """``cli.main(argv)`` in process; returns ``(exit status, stdout, stderr)``."""
    try:
        code = cli.main([str(a) for a in argv])
    except SystemExit as exc:
        code = exc.code
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def assert_one_line(code, err, pattern):
    """Exit 2, exactly one line ``bayes-qse: error: ...`` matching ``pattern``."""
    lines = [line for line in err.splitlines() if line.strip()]
    assert code == 2, err
    assert len(lines) == 1, err
    assert lines[0].startswith("bayes-qse: error: "), err
    assert "Traceback" not in err and "internal error" not in err
    assert re.search(pattern, lines[0]), lines[0]


@pytest.fixture
def trapped(monkeypatch):
    """Make every experiment's ``run`` and the sweep engine's ``run_units`` fail loudly: a
    configuration that reaches them was not refused up front."""

    def trap(*a, **k):
        raise AssertionError("a unit started before the configuration was refused")

    import bayes_qse.sweeps as sweeps

    monkeypatch.setattr(sweeps, "run_units", trap)
    for name in EXPERIMENTS:
        monkeypatch.setattr(get_experiment(name), "run", trap)


def _flatten(config, prefix=""):
    for key, value in config.items():
        if isinstance(value, dict):
            yield from _flatten(value, f"{prefix}{key}.")
        else:
            yield f"{prefix}{key}", value


def _wrong(value):
    """A TOML value of the wrong type for a setting whose default is ``value``, and the
    type the message must ask for."""
    if isinstance(value, bool):
        return '"false"', "a boolean"  # the classic: a string read as truthy
    if isinstance(value, int):
        return '"3"', "an integer"
    if isinstance(value, float):
        return '"big"', "a number"
    if isinstance(value, str):
        return "true", "a string"
    if isinstance(value, list):
        return '"x"', "a list"
    raise AssertionError(value)


def _toml(key, literal):
    """``key = literal`` as TOML, a dotted key becoming its table."""
    *tables, last = key.split(".")
    head = f"[{'.'.join(tables)}]\n" if tables else ""
    # quote table parts with dashes (``farsighted-random``)
    head = head.replace("[", "[").replace("farsighted-random", '"farsighted-random"')
    head = head.replace("random-large", '"random-large"')
    return f"{head}{last} = {literal}\n"


# ---------------------------------------------------------------------------------------
# run --config: every setting of every experiment, wrong type
# ---------------------------------------------------------------------------------------


RUN_TYPE_CASES = [
    (name, key, *_wrong(value))
    for name in EXPERIMENTS
    for key, value in _flatten(get_experiment(name).DEFAULT_CONFIG)
]


@pytest.mark.parametrize(
    ("experiment", "key", "literal", "kind"),
    [pytest.param(*c, id=f"{c[0]}:{c[1]}") for c in RUN_TYPE_CASES],
)
def test_run_config_wrong_type_is_one_line(
    tmp_path, capsys, trapped, experiment, key, literal, kind
):
    """Bug caught: a value of another type accepted (``known_model = "false"`` read as true,
    ``n_states = "three"`` ending in a TypeError, exit 1)."""
    cfg = tmp_path / "c.toml"
    cfg.write_text(_toml(key, literal))
    argv = ["run", experiment, "--config", cfg, "--out", tmp_path / "o", "--no-plot"]
    code, out, err = run_cli(argv, capsys)
    assert_one_line(code, err, re.escape(key) + f" must be {kind}")
    assert not (tmp_path / "o").exists()


# ---------------------------------------------------------------------------------------
# Sweep specs
# ---------------------------------------------------------------------------------------

GRID = '[grid]\ngame = ["linear"]\nlearner = ["greedy"]\nT = [10]\nseeds = [0]\n'
OFFLINE = 'kind = "offline"\n[grid]\ngame = ["linear"]\nbehaviour = ["uniform"]\nseeds = [0]\n'


def _online_type_cases():
    from bayes_qse.experiments.online_regret import DEFAULT_CONFIG
    from bayes_qse.experiments.online_units import LEARNER_KEYS, REFIT_KEYS
    from bayes_qse.sweeps.spec import GAME_TABLES

    for key in ("chunk", "known_model", "reward_range", "initial_dist"):
        literal, kind = _wrong(DEFAULT_CONFIG[key])
        yield f"top:{key}", f"{key} = {literal}\n{GRID}", f"{key} must be {kind}"
    for game in GAME_TABLES:  # a run --config file's [<game>] tables, the game in the grid
        grid = GRID.replace('"linear"', f'"{game}"')
        for key, value in DEFAULT_CONFIG[game].items():
            literal, kind = _wrong(value)
            text = f'{grid}["{game}"]\n{key} = {literal}\n'
            yield f"{game}.{key}", text, re.escape(f"{game}.{key} must be {kind}")
    for key in (*LEARNER_KEYS, *REFIT_KEYS):  # run --config's [learner] table
        literal, kind = _wrong(DEFAULT_CONFIG["learner"][key])
        text = f"{GRID}[learner]\n{key} = {literal}\n"
        yield f"learner.{key}", text, re.escape(f"learner.{key} must be {kind}")


def _offline_type_cases():
    from bayes_qse.experiments.offline_suboptimality import DEFAULT_CONFIG
    from bayes_qse.sweeps.spec import OFFLINE_GRID_FIXED

    for key, value in _flatten(DEFAULT_CONFIG):
        if key.split(".")[0] in OFFLINE_GRID_FIXED:
            continue
        literal, kind = _wrong(value)
        if key.startswith("learner."):  # the learner settings: [learner], as in run --config
            yield key, OFFLINE + _toml(key, literal), re.escape(f"{key} must be {kind}")
            continue
        # offline_suboptimality's settings at the top level, as in its run --config (a
        # top-level key goes above [grid])
        text = OFFLINE + _toml(key, literal) if "." in key else _toml(key, literal) + OFFLINE
        yield key, text, re.escape(f"{key} must be {kind}")


SPEC_TYPE_CASES = [*_online_type_cases(), *_offline_type_cases()]

SPEC_VALUE_CASES = [
    # sizes against memory (the limit of make-game and simulate), before any unit runs
    (
        "seed-count-1e9",
        GRID.replace("seeds = [0]", "seeds = {start = 0, count = 1000000000}"),
        r"grid\.seeds count must be <= 100000",
    ),
    ("T-1e8", GRID.replace("T = [10]", "T = [100000000]"), r"T=100000000.*memory"),
    ("n_states-1e5", GRID + "[linear]\nn_states = 100000\n", r"linear.*memory"),
    ("feature_dim-1e9", GRID + "[linear]\nfeature_dim = 1000000000\n", r"memory"),
    (
        "tabular-huge",
        GRID.replace('"linear"', '"tabular"')
        + "[tabular]\nn_states = 3000\nn_leader_actions = 30\n",
        r"tabular.*memory",
    ),
    ("offline-sizes-1e12", "sizes = [1000000000000]\n" + OFFLINE, r"sizes.*memory"),
    ("offline-game-1e6-states", OFFLINE + "[game]\nn_states = 1000000\n", r"game.*memory"),
    ("offline-sizes-strings", 'sizes = ["ten"]\n' + OFFLINE, r"sizes\[0\]"),
    # seeds: 32-bit, non-negative
    ("seed-2^32", GRID.replace("seeds = [0]", "seeds = [4294967296]"), r"seeds.*4294967295"),
    (
        "seed-range-past-2^32",
        GRID.replace("seeds = [0]", "seeds = {start = 4294967295, count = 2}"),
        r"seeds.*32-bit",
    ),
    ("game-seed-negative", GRID + "[linear]\nseed = -1\n", r"linear\.seed"),
    ("game-seed-2^33", GRID + "[linear]\nseed = 8589934592\n", r"linear\.seed"),
    ("offline-game-seed-negative", OFFLINE + "[game]\nseed = -3\n", r"game\.seed"),
    ("offline-game-seed-2^33", OFFLINE + "[game]\nseed = 8589934592\n", r"seed"),
    # a bad second game or learner is found before the first unit runs
    (
        "bad-second-game",
        GRID.replace('["linear"]', '["linear", "tabular"]') + "[tabular]\nn_states = 0\n",
        r"tabular\.n_states",
    ),
    ("bad-second-eta", GRID + "eta = [1.0, -2.0]\n", r"eta"),
    ("unknown-second-learner", GRID.replace('["greedy"]', '["greedy", "nope"]'), r"nope"),
    ("zero-T", GRID.replace("T = [10]", "T = [0]"), r"T must be"),
    ("string-T", GRID.replace("T = [10]", 'T = ["ten"]'), r"T must be"),
    ("bool-T", GRID.replace("T = [10]", "T = [true]"), r"T must be"),
    ("chunk-not-dividing", "chunk = 3\n" + GRID, r"chunk"),
    ("chunk-zero", "chunk = 0\n" + GRID, r"chunk"),
    ("reward-range-reversed", "reward_range = [1.0, 0.0]\n" + GRID, r"reward_range"),
    ("initial-dist-unknown", 'initial_dist = "guess"\n' + GRID, r"initial_dist"),
    ("games-not-table", 'games = "linear"\n' + GRID, r"games"),
    ("learner-not-table", 'learner = "greedy"\n' + GRID, r"learner"),
    ("games-entry-not-table", GRID + "[games]\nlinear = 3\n", r"games\.linear"),
    ("learner-unknown-key", GRID + "[learner]\nspeed = 1\n", r"speed"),
    ("game-unknown-key", GRID + "[linear]\nspeed = 1\n", r"speed"),
    ("offline-settings-not-table", 'kind = "offline"\nsettings = 3\n' + OFFLINE[17:], r"settings"),
    ("offline-unknown-behaviour", OFFLINE.replace('"uniform"', '"psychic"'), r"psychic"),
    ("offline-eta-zero", OFFLINE + "[game]\neta = 0.0\n", r"eta"),
    ("offline-learner-unknown", 'learners = ["nope"]\n' + OFFLINE, r"nope"),
    ("seeds-negative", GRID.replace("seeds = [0]", "seeds = [-1]"), r"seeds"),
    ("seeds-duplicate", GRID.replace("seeds = [0]", "seeds = [1, 1]"), r"seeds"),
    ("seeds-float", GRID.replace("seeds = [0]", "seeds = [0.5]"), r"seeds"),
    ("seeds-bad-table", GRID.replace("seeds = [0]", "seeds = {start = 0}"), r"seeds"),
    ("kind-unknown", 'kind = "hybrid"\n' + GRID, r"kind"),
    # the learner settings: one [learner] table in both kinds of spec (as in run --config)
    ("learner-bad-value", GRID + '[learner]\nradius = "huge"\n', r"learner\.radius: must be"),
    ("offline-learner-table-unknown", OFFLINE + "[learner]\nwat = 1\n", r"learner\.wat"),
    ("offline-learner-bad-value", OFFLINE + '[learner]\nrule = "mean"\n', r"learner\.rule"),
    (
        "offline-settings-learner",
        OFFLINE + "[settings.learner]\ndelta = 0.2\n",
        r"settings\.learner: learner settings go under \[learner\]",
    ),
]


@pytest.mark.parametrize(
    ("text", "pattern"),
    [pytest.param(t, p, id=i) for i, t, p in SPEC_TYPE_CASES + SPEC_VALUE_CASES],
)
def test_sweep_spec_refused_before_any_unit(tmp_path, capsys, trapped, text, pattern):
    """Bug caught: ``load_spec`` copying values without ``run --config``'s type check
    (``known_model = "false"`` ran as planning mode), a spec problem found only when a unit
    runs (after the first unit saved results), an internal error (exit 1) or a MemoryError."""
    spec = tmp_path / "spec.toml"
    spec.write_text(text)
    code, out, err = run_cli(["sweep", spec, "--out", tmp_path / "o"], capsys)
    assert_one_line(code, err, pattern)
    assert not (tmp_path / "o").exists()


def test_known_model_string_is_not_read_as_true(tmp_path):
    """Bug caught: ``known_model = "false"`` (a non-empty string, truthy) giving a sweep in
    planning mode; the typed path refuses it and the boolean ``false`` keeps the learner's
    model unknown in every unit."""
    from bayes_qse.errors import ConfigError
    from bayes_qse.sweeps import expand, load_spec

    spec = tmp_path / "s.toml"
    spec.write_text('known_model = "false"\n' + GRID)
    with pytest.raises(ConfigError, match="known_model must be a boolean"):
        expand(load_spec(spec))
    spec.write_text("known_model = false\n" + GRID)
    assert all(u.config["known_model"] is False for u in expand(load_spec(spec)).units)
    spec.write_text('known_model = "false"\n' + OFFLINE)
    with pytest.raises(ConfigError, match="known_model must be a boolean"):
        expand(load_spec(spec))


RUN_VALUE_CASES = [
    ("online_regret", "[linear]\nn_states = 100000\n", r"linear.*memory"),
    ("online_regret", "episodes = 100000000\n", r"memory"),
    ("online_regret", "seeds = 1000000000\n", r"seeds must be <="),
    ("online_regret", "[linear]\nseed = -1\n", r"linear\.seed"),
    ("online_regret", '[linear]\nn_states = "three"\n', r"linear\.n_states must be an integer"),
    ("online_regret", '[learner]\nprior_scale = "big"\n', r"learner\.prior_scale must be a number"),
    ("online_regret", '[learner]\nradius = "huge"\n', r"learner\.radius: must be one of"),
    ("offline_suboptimality", '[learner]\nrule = "mean"\n', r"learner\.rule: must be one of"),
    ("online_regret", "[learner]\nno_such = 1\n", r"unknown key 'learner\.no_such'"),
    ("online_regret", "delta = 0.2\n[learner]\ndelta = 0.1\n", r"delta given both"),
    ("online_regret", 'known_model = "false"\n', r"known_model must be a boolean"),
    (
        "online_regret",
        'games = ["linear", "tabular"]\n[tabular]\nn_states = 0\n',
        r"tabular\.n_states",
    ),
    ("offline_suboptimality", 'sizes = ["ten"]\n', r"sizes\[0\] must be an integer"),
    ("offline_suboptimality", "sizes = [1000000000000]\n", r"sizes.*memory"),
    ("offline_suboptimality", "[game]\nn_states = 1000000\n", r"game.*memory"),
    # the set-coverage experiments' game table (found by the rerun: MemoryError, a negative
    # seed reaching NumPy, a uint32 overflow -- all exit 1 before)
    ("rationality_sweep", "[game]\nn_states = 100000\n", r"config: game: .*memory"),
    ("rationality_sweep", "episodes = 100000000\n", r"config: episodes: .*memory"),
    ("rationality_sweep", "width_sample_size = 100000000000\n", r"width_sample_size.*memory"),
    ("rationality_sweep", "[game]\nseed = -1\n", r"game\.seed"),
    ("confidence_sets", "sample_sizes = [1000000000000]\n", r"config: sample_sizes: .*memory"),
    ("confidence_sets", "sbc_sample_size = 100000000000\n", r"sbc_sample_size.*memory"),
    ("confidence_sets", "[game]\nn_states = 100000\n", r"config: game: .*memory"),
    ("confidence_sets", "[game]\nseed = -1\n", r"game\.seed"),
    ("confidence_sets", "[game]\nn_states = 0\n", r"game\.n_states: must be an integer >= 1"),
    ("posterior_inspection", "n_episodes = 1000000000000\n", r"n_episodes.*memory"),
    ("security_games", "n_targets = 10000000\n", r"n_targets"),
    ("inverse_stackelberg", "m = 60\nn = 60\n", r"m, n: .*GB"),
    ("inverse_stackelberg", "sizes = [5]\n", r"sizes"),
]


@pytest.mark.parametrize(
    ("experiment", "text", "pattern"),
    [pytest.param(*c, id=f"{c[0]}-{i}") for i, c in enumerate(RUN_VALUE_CASES)],
)
def test_run_config_value_refused_before_running(
    tmp_path, capsys, trapped, experiment, text, pattern
):
    """Bug caught: sizes not checked against memory (MemoryError, exit 1), a negative game
    seed reaching NumPy (ValueError, exit 1)."""
    cfg = tmp_path / "c.toml"
    cfg.write_text(text)
    argv = ["run", experiment, "--config", cfg, "--out", tmp_path / "o", "--no-plot"]
    assert_one_line(*run_cli(argv, capsys)[::2], pattern)


# ---------------------------------------------------------------------------------------
# Files: unreadable, non-UTF-8, binary, a directory, missing
# ---------------------------------------------------------------------------------------

FILE_CASES = [
    ("non-utf8", b'name = "\xff\xfe"\n', r"cannot read .*utf-8"),
    ("latin1-comment", b"# caf\xe9\n[grid]\n", r"cannot read"),
    ("binary", bytes(range(256)), r"cannot read|not valid TOML"),
    ("nul-bytes", b"\x00\x00\x00", r"not valid TOML|cannot read"),
    ("empty", b"", r"grid"),
    ("not-toml", b"this is not toml", r"not valid TOML"),
    ("utf16-bom", "name = 'x'\n".encode("utf-16"), r"cannot read|not valid TOML"),
]


@pytest.mark.parametrize("command", ["sweep", "run"])
@pytest.mark.parametrize(
    ("content", "pattern"), [pytest.param(c, p, id=i) for i, c, p in FILE_CASES]
)
def test_bad_files_are_one_line(tmp_path, capsys, trapped, command, content, pattern):
    """Bug caught: a non-UTF-8 spec ending in a UnicodeDecodeError (internal error, exit 1)."""
    path = tmp_path / "bad.toml"
    path.write_bytes(content)
    if command == "sweep":
        argv = ["sweep", path, "--out", tmp_path / "o"]
    else:
        argv = ["run", "online_regret", "--config", path, "--out", tmp_path / "o"]
        pattern = pattern.replace("grid", "nothing to check")  # an empty config is fine
        if content == b"":
            pytest.skip("an empty --config is a valid (empty) configuration")
    code, out, err = run_cli(argv, capsys)
    assert_one_line(code, err, pattern)
    assert str(path) in err or "grid" in err


@pytest.mark.parametrize("command", ["sweep", "run"])
def test_unreadable_file_is_one_line(tmp_path, capsys, trapped, command):
    """Bug caught: an OSError while reading surfacing as an internal error.  A file that
    opens but cannot be read, even by root: ``/proc/self/mem`` (EIO at offset 0); as a
    non-root user also a file of mode 000."""
    path = Path("/proc/self/mem")
    if os.geteuid() != 0:
        path = tmp_path / "locked.toml"
        path.write_text(GRID)
        path.chmod(0)
    argv = (
        ["sweep", path, "--out", tmp_path / "o"]
        if command == "sweep"
        else ["run", "online_regret", "--config", path, "--out", tmp_path / "o"]
    )
    code, out, err = run_cli(argv, capsys)
    assert_one_line(code, err, re.escape(str(path)))


# ---------------------------------------------------------------------------------------
# Never write into what the run does not own; never over an input
# ---------------------------------------------------------------------------------------


def _user_files(folder: Path) -> dict[str, bytes]:
    folder.mkdir(parents=True, exist_ok=True)
    files = {"results.json": b'{"mine": 1}', "table.md": b"| my | table |", "notes.txt": b"x"}
    for name, content in files.items():
        (folder / name).write_bytes(content)
    return files


def _unchanged(folder: Path, files: dict[str, bytes]) -> None:
    assert sorted(p.name for p in folder.iterdir()) == sorted(files)  # not even a .lock
    for name, content in files.items():
        assert (folder / name).read_bytes() == content


def test_run_refuses_a_folder_of_user_files(tmp_path, capsys):
    """Bug caught: ``RunStore`` looking only for a manifest and replacing a user's own
    ``results.json`` and ``table.md`` with exit 0."""
    files = _user_files(tmp_path / "mine")
    argv = ["run", "confidence_sets", "--out", tmp_path / "mine", "--no-plot", "--no-progress"]
    code, out, err = run_cli(argv, capsys)
    assert_one_line(code, err, r"not empty and holds no run.*choose another --out")
    _unchanged(tmp_path / "mine", files)


def test_run_refuses_the_current_directory_of_user_files(tmp_path, capsys, monkeypatch):
    """``--out .`` (and the like: ``--out ~``) in a folder of the user's files.  Bug caught:
    the check made on the name instead of the directory's content."""
    files = _user_files(tmp_path / "home")
    monkeypatch.chdir(tmp_path / "home")
    for out in (".", "./", str(tmp_path / "home" / ".." / "home")):
        code, _, err = run_cli(["run", "confidence_sets", "--out", out, "--no-plot"], capsys)
        assert_one_line(code, err, r"not empty and holds no run")
        _unchanged(tmp_path / "home", files)


def test_run_refuses_a_sweep_directory(tmp_path, capsys):
    """Bug caught: ``run --out SWEEP_DIR`` replacing the sweep's ``results.json``."""
    sweep = tmp_path / "sweep"
    files = {"sweep.json": b'{"spec": {}, "fingerprint": "x"}', "results.json": b"{}"}
    sweep.mkdir()
    for name, content in files.items():
        (sweep / name).write_bytes(content)
    code, _, err = run_cli(["run", "confidence_sets", "--out", sweep, "--no-plot"], capsys)
    assert_one_line(code, err, r"holds a sweep")
    _unchanged(sweep, files)


def test_run_store_refuses_user_files_from_the_api(tmp_path):
    """The Python API too (``RunStore``, also under ``resume=False``, which would delete
    ``results.json``).  Bug caught: only the CLI checking."""
    from bayes_qse.errors import ConfigError
    from bayes_qse.experiments.store import RunStore

    files = _user_files(tmp_path / "mine")
    for resume in (True, False):
        with pytest.raises(ConfigError, match="holds no run"):
            RunStore(tmp_path / "mine", "x", {"seeds": 1}, resume=resume)
        _unchanged(tmp_path / "mine", files)


def test_run_accepts_its_own_and_empty_directories(tmp_path):
    """The refusal must not hit a directory the run owns: empty, only a stale ``.lock`` of a
    killed run, or a previous run of the same config.  Bug caught: a refusal too broad."""
    from bayes_qse.experiments.store import RunStore

    (tmp_path / "empty").mkdir()
    (tmp_path / "locked").mkdir()
    (tmp_path / "locked" / ".lock").write_text("")
    for name in ("empty", "locked", "fresh"):
        RunStore(tmp_path / name, "x", {"seeds": 1}).close()
    store = RunStore(tmp_path / "fresh", "x", {"seeds": 1})
    store.save_unit("a", {"v": [1.0]}, {})
    store.close()
    RunStore(tmp_path / "fresh", "x", {"seeds": 1}).close()  # resume
    RunStore(tmp_path / "fresh", "x", {"seeds": 1}, resume=False).close()  # restart


@pytest.fixture(scope="module")
def game_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("g") / "g.npz"
    assert cli.main(["make-game", "pricing", str(path)]) == 0
    return path


def test_simulate_refuses_to_write_over_its_game(game_file, tmp_path, capsys):
    """``simulate g.npz g.npz`` (and through a link).  Bug caught: the dataset replacing the
    input game with exit 0."""
    capsys.readouterr()
    game = tmp_path / "g.npz"
    game.write_bytes(game_file.read_bytes())
    (tmp_path / "link.npz").symlink_to(game)
    os.link(game, tmp_path / "hard.npz")
    before = game.read_bytes()
    for out in (game, tmp_path / "link.npz", tmp_path / "hard.npz", tmp_path / "." / "g.npz"):
        code, _, err = run_cli(["simulate", game, out, "--episodes", "5"], capsys)
        assert_one_line(code, err, r"is the GAME\.npz input")
        assert game.read_bytes() == before


def test_run_and_sweep_refuse_an_input_they_would_overwrite(tmp_path, capsys, trapped):
    """A ``--config`` or a spec that is one of the files the run writes in ``--out``
    (``results.json``, ``manifest.json``...).  Bug caught: the gathered results written over
    the spec they came from."""
    out = tmp_path / "o"
    out.mkdir()
    (out / "sweep.json").write_text("{}")
    spec = out / "results.json"
    spec.write_text(GRID)
    code, _, err = run_cli(["sweep", spec, "--out", out], capsys)
    assert_one_line(code, err, r"is the SPEC\.toml input")
    assert spec.read_text() == GRID
    cfg = tmp_path / "run" / "results.json"
    cfg.parent.mkdir()
    cfg.write_text("seeds = 1\n")
    code, _, err = run_cli(["run", "online_regret", "--config", cfg, "--out", cfg.parent], capsys)
    assert_one_line(code, err, r"is the --config input")
    assert cfg.read_text() == "seeds = 1\n"


def test_every_write_command_is_checked_against_its_inputs():
    """Every subcommand that takes input paths and writes an output is covered above or
    writes nothing: make-game has no input (its OUT.npz is a file it creates or replaces, as
    asked), solve/plan-coverage/fit/games write nothing, plot writes figures into a run's or
    a sweep's own directory (it reads its manifest or sweep.json first), demo refuses a
    folder that is not a demo's.  Bug caught: a new writing subcommand added
    without a same-path check (this list goes stale)."""
    parser = cli.build_parser()
    sub = next(a for a in parser._actions if a.dest == "command")
    assert set(sub.choices) == {
        "demo",
        "games",
        "make-game",
        "simulate",
        "solve",
        "plan-coverage",
        "fit",
        "run",
        "plot",
        "sweep",
    }
    # demo: --out checked by check_demo_dir (test_demo_refuses_a_folder_of_user_files)


def test_demo_refuses_a_folder_of_user_files(tmp_path, capsys, monkeypatch):
    """``demo --out .`` among a user's files.  Bug caught: the demo replacing a user's
    ``results.json`` (it wrote into any folder)."""
    files = _user_files(tmp_path / "mine")
    monkeypatch.chdir(tmp_path / "mine")
    code, _, err = run_cli(["demo", "--out", ".", "--quick", "--no-progress"], capsys)
    assert_one_line(code, err, r"not the demo's")
    _unchanged(tmp_path / "mine", files)
    only_results = tmp_path / "only"
    only_results.mkdir()
    (only_results / "results.json").write_text('{"mine": 1}')
    code, _, err = run_cli(["demo", "--out", only_results, "--quick"], capsys)
    assert_one_line(code, err, r"not the demo's")
    assert (only_results / "results.json").read_text() == '{"mine": 1}'


def test_demo_accepts_a_previous_demo_folder(tmp_path):
    """A rerun of ``make demo`` writes over the previous demo's files, and a killed one's
    leftovers.  Bug caught: a refusal too broad (``make demo`` failing the second time)."""
    from bayes_qse.demo import DEMO_FILES, check_demo_dir

    out = tmp_path / "demo_out"
    out.mkdir()
    for name in DEMO_FILES:
        (out / name).write_text("x")
    (out / "results.json").write_text('{"seed": 0, "files": {}}')
    (out / ".regret.png.abc123.tmp").write_text("")
    assert check_demo_dir(out) == out
    assert check_demo_dir(tmp_path / "new") == tmp_path / "new"
