"""The README's command-line block works as written for someone who just ran ``make demo``
(issue 23): it is run, line by line, in a fresh ``bash`` (no profile, a bare ``PATH``) from a
folder laid out like the repository's root, with ``.venv`` the virtual environment the tests
run in (the repository's own ``.venv`` when present)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def command_block() -> str:
    """The first ```bash block after the README's ``## Command line`` heading."""
    text = (REPO / "README.md").read_text(encoding="utf-8")
    section = text[text.index("## Command line") :]
    match = re.search(r"```bash\n(.*?)```", section, re.S)
    assert match, "no bash block under '## Command line'"
    return match.group(1)


def _venv() -> Path | None:
    """The repository's ``.venv``, else the virtual environment running the tests, else
    ``None`` (then the test is skipped: there is nothing ``make demo`` would have built)."""
    if (REPO / ".venv" / "bin" / "activate").is_file():
        return REPO / ".venv"
    prefix = Path(sys.prefix)
    if sys.prefix != sys.base_prefix and (prefix / "bin" / "activate").is_file():
        return prefix
    return None


def test_block_activates_the_venv_first():
    """Bug caught: commands that need ``.venv`` (bare ``bayes-qse``, ``python
    experiments/...``) before anything says to activate it."""
    lines = [ln for ln in command_block().splitlines() if ln.strip() and not ln.startswith("#")]
    assert lines[0].split("#")[0].strip() == "source .venv/bin/activate"
    assert all(ln.startswith(("bayes-qse ", "python ")) for ln in lines[1:]), lines


@pytest.mark.slow
def test_readme_command_block_runs_in_a_fresh_shell(tmp_path):
    """Bug caught: ``bayes-qse: command not found`` / the system Python after ``make demo``
    (the README never said to activate ``.venv``), a command whose flags changed, a spec path
    that moved, a run too long for a first try."""
    venv = _venv()
    if venv is None:
        pytest.skip("no .venv (make demo builds it) and not run from a virtual environment")
    for name in ("docs", "experiments"):
        (tmp_path / name).symlink_to(REPO / name)
    (tmp_path / ".venv").symlink_to(venv)
    script = "set -euo pipefail\n" + command_block()
    # the commands ran from .venv (its activate names the environment's real path)
    script += (
        '\n[ "$(readlink -f "$(command -v bayes-qse)")" = "$(readlink -f .venv/bin/bayes-qse)" ]'
    )
    script += '\n[ "$(readlink -f "$(command -v python)")" = "$(readlink -f .venv/bin/python)" ]\n'
    env = {"PATH": "/usr/bin:/bin", "HOME": os.environ.get("HOME", str(tmp_path))}
    for key in ("BAYES_QSE_CACHE_DIR", "BAYES_QSE_CACHE", "XDG_CACHE_HOME", "TMPDIR"):
        if key in os.environ:
            env[key] = os.environ[key]
    if venv != REPO / ".venv":  # a shared environment: this checkout's code, not its install
        env["PYTHONPATH"] = str(REPO)
    proc = subprocess.run(
        ["bash", "--noprofile", "--norc", "-c", script],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=1800,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    for path in ("game.npz", "data.npz", "runs/online/manifest.json", "runs/sweep/results.nc"):
        assert (tmp_path / path).is_file(), path
    assert "usage: online_regret.py" in proc.stdout or "experiments/online_regret.py" in proc.stdout
