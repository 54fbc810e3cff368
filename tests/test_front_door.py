"""The front door (issue 23): fast help without JAX, float64 still switched on before any JAX
array, and texts that cannot go stale (the games ``make-game`` accepts, ``bayes-qse
games``, the README's test count and demo time, a netCDF error naming its file)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from bayes_qse import cli

REPO = Path(__file__).resolve().parents[1]
#: What a help must not import: JAX and everything built on it, and the experiments.
HEAVY = (
    "jax",
    "jaxlib",
    "numpyro",
    "xarray",
    "matplotlib",
    "arviz",
    "optax",
    "scipy",
    "ray",
    "bayes_qse.experiments",
    "bayes_qse.commands",
    "bayes_qse.games",
)


def _env():
    return {**os.environ, "PYTHONPATH": str(REPO)}


def imported_modules(*argv: str) -> tuple[int, set[str], str]:
    """``python -X importtime -m bayes_qse.cli *argv``: exit status, the modules imported,
    stdout."""
    proc = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "bayes_qse.cli", *argv],
        capture_output=True,
        text=True,
        env=_env(),
        timeout=300,
    )
    mods = {
        line.split("|")[-1].strip()
        for line in proc.stderr.splitlines()
        if line.startswith("import time:") and "|" in line
    }
    return proc.returncode, mods, proc.stdout


@pytest.mark.parametrize("command", [None, *cli.COMMANDS])
def test_help_imports_no_jax(command):
    """``bayes-qse --help`` and every subcommand's ``--help`` import no JAX, NumPyro, xarray,
    matplotlib nor any experiment.  Bug caught: the CLI importing every command's module (and
    ``import bayes_qse`` switching on JAX) before parsing: 3.5 s CPU for a help."""
    argv = ["--help"] if command is None else [command, "--help"]
    code, mods, out = imported_modules(*argv)
    assert code == 0 and out.startswith("usage: bayes-qse")
    assert "bayes_qse.cli" in mods or "bayes_qse.console" in mods  # the scan sees our imports
    heavy = sorted(m for m in mods if m.split(".")[0] in HEAVY or m.startswith(HEAVY))
    assert not heavy, heavy


def test_run_help_of_an_experiment_still_lists_its_settings():
    """``run NAME --help`` needs the experiment (its settings): it may import it.  Bug caught:
    the lazy parser losing the per-experiment help."""
    code, _, out = imported_modules("run", "online_regret", "--help")
    assert code == 0 and "settings of online_regret" in out and "prior_scale" in out


def test_float64_is_switched_on_before_any_array_in_the_command():
    """In the command (``python -m bayes_qse.cli``, judged from ``sys.orig_argv``) the JAX
    configuration is deferred, not dropped: a command's arrays are float64 and the compile
    cache is on; the package's public names still load (lazily).  Bug caught: deferring
    ``jax_enable_x64`` past the first array, or never making it."""
    code = (
        "import sys, json\n"
        "sys.orig_argv = [sys.executable, '-m', 'bayes_qse.cli', 'solve']\n"
        "import bayes_qse\n"
        "light = 'jax' not in sys.modules\n"
        "from bayes_qse import cli\n"
        "light = light and 'jax' not in sys.modules\n"
        "rc = cli.main(['games', '--json'])\n"
        "import jax, jax.numpy as jnp\n"
        "print(json.dumps({'light': light, 'rc': rc, 'dtype': str(jnp.zeros(1).dtype),\n"
        "    'cache': bayes_qse.CACHE_DIR, 'jax_cache': jax.config.jax_compilation_cache_dir,\n"
        "    'game': bayes_qse.Game.__name__}))\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=_env(), timeout=300
    )
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out["light"] is True and out["rc"] == 0
    assert out["dtype"] == "float64"
    assert out["cache"] == out["jax_cache"] and out["cache"]
    assert out["game"] == "Game"


def test_library_import_still_switches_float64_at_once():
    """Outside the command ``import bayes_qse`` configures JAX at import, whichever was
    imported first.  Bug caught: the library's documented float64 switch made lazy too."""
    for first in ("import bayes_qse, jax.numpy as jnp", "import jax.numpy as jnp, bayes_qse"):
        proc = subprocess.run(
            [sys.executable, "-c", f"{first}; print(jnp.zeros(1).dtype)"],
            capture_output=True,
            text=True,
            env=_env(),
            timeout=300,
        )
        assert proc.stdout.strip() == "float64", proc.stderr


# ---------------------------------------------------------------------------------------
# Texts kept true by tests
# ---------------------------------------------------------------------------------------


def test_make_game_help_lists_every_game_it_accepts():
    """Bug caught: ``make-game --help`` naming 4 of the 8 games (a list written by hand that
    the registry outgrew)."""
    from bayes_qse.games import NAMED_GAMES

    assert list(cli.MAKE_GAME_NAMES) == [*NAMED_GAMES, "random"]
    parser = cli.build_parser()
    sub = next(a for a in parser._actions if a.dest == "command").choices["make-game"]
    text = " ".join(sub.format_help().split())
    for name in cli.MAKE_GAME_NAMES:
        assert re.search(rf"(^|[ ,]){re.escape(name)}([ ,]|$)", text), name


def test_plan_coverage_choices_are_the_security_games():
    """``plan-coverage``'s choices are spelled out in the parser (no JAX import); bug caught:
    a security game added to the registry but refused by the command."""
    from bayes_qse.security import SECURITY_GAMES

    assert list(cli.SECURITY_GAME_NAMES) == sorted(SECURITY_GAMES)


def test_games_lists_what_make_game_accepts_in_plain_text(tmp_path, capsys):
    """``bayes-qse games``: no reST markup, the make-game games exactly (each accepted by
    ``make-game``), the security games marked as not for make-game.  Bug caught: Sphinx
    markup (``:func:``, double backquotes) on the terminal; security games listed as if
    make-game took them."""
    assert cli.main(["games"]) == 0
    text = capsys.readouterr().out
    assert ":func:" not in text and "``" not in text and ":data:" not in text
    assert cli.main(["games", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    makeable = [n for n, r in rows.items() if r.get("make_game")]
    assert sorted(makeable) == sorted(cli.MAKE_GAME_NAMES)
    for name, row in rows.items():
        code = cli.main(["make-game", name, str(tmp_path / f"{name}.npz")])
        capsys.readouterr()
        assert (code == 0) == bool(row["make_game"]), name
    assert "not for make-game" in text


def test_readme_quotes_no_test_count():
    """Bug caught: "all 622 tests" when 756 were collected -- a count quoted in prose goes
    stale with every merge, so the README quotes none."""
    text = (REPO / "README.md").read_text(encoding="utf-8")
    assert not re.search(r"\b\d+ tests\b", text)


def test_demo_time_is_stated_once_with_cold_and_warm_cache():
    """The demo's length: the CLI names no duration (it said "five-minute" while the README
    said "~1-minute"); the README states the measured cold- and warm-cache times in one
    place.  Bug caught: two texts with two durations, or a warm-cache figure given as the
    time."""
    parser = cli.build_parser()
    sub = next(a for a in parser._actions if a.dest == "command")
    demo_help = next(a.help for a in sub._choices_actions if a.dest == "demo")
    assert not re.search(r"minute|second|\d+ ?s\b", demo_help), demo_help
    assert "minute" not in (cli.__doc__ or "").split("demo [--out DIR]")[1].split("\n")[0]
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    times = readme.split("<!-- TIMES -->")[1].split("<!-- /TIMES -->")[0]
    assert re.search(r"cold compile cache", times) and re.search(r"warm", times), times
    assert "1-minute" not in readme and "five-minute" not in readme


def test_unreadable_netcdf_error_names_the_file(tmp_path, capsys):
    """Bug caught: ``plot`` of a sweep whose ``results.nc`` is damaged printing h5py's
    message without the file's name."""
    from bayes_qse.errors import ConfigError
    from bayes_qse.sweeps import open_results

    (tmp_path / "results.nc").write_bytes(b"\x89HDF\r\n\x1a\n" + b"\x00" * 64)
    with pytest.raises(ConfigError, match=re.escape(str(tmp_path / "results.nc"))):
        open_results(tmp_path)


def test_console_script_help_imports_no_jax():
    """The installed ``bayes-qse`` script (judged by its name, not ``-m``) is as light.  Bug
    caught: the command detected only under ``python -m``."""
    script = Path(sys.prefix) / "bin" / "bayes-qse"
    if not script.is_file():
        pytest.skip("no bayes-qse console script in this environment")
    proc = subprocess.run(
        [str(script), "--help"],
        capture_output=True,
        text=True,
        env={**_env(), "PYTHONPROFILEIMPORTTIME": "1"},
        timeout=300,
    )
    assert proc.returncode == 0 and proc.stdout.startswith("usage: bayes-qse")
    mods = {ln.split("|")[-1].strip() for ln in proc.stderr.splitlines() if "|" in ln}
    assert "bayes_qse" in mods
    assert not [m for m in mods if m.split(".")[0] in HEAVY or m.startswith(HEAVY)]
