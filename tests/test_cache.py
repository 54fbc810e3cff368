"""The persistent compilation cache (bayes_qse/_cache.py): on by default in the directory the
environment names, off with ``BAYES_QSE_CACHE=0``.  Each case runs a fresh interpreter, since
the cache is configured once at import."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

CODE = (
    "import json, jax, jax.numpy as jnp, bayes_qse as bq\n"
    "f = jax.jit(lambda x: jnp.sin(x) * 3.0 + x @ x)\n"
    "f(jnp.ones((7, 7))).block_until_ready()\n"
    "print(json.dumps({'dir': bq.CACHE_DIR, 'jax_dir': jax.config.jax_compilation_cache_dir}))\n"
)


def _run(env_changes: dict[str, str | None]) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("BAYES_QSE_CACHE", "JAX_COMP"))}
    env.update({"JAX_PLATFORMS": "cpu", "PYTHONPATH": str(ROOT)})
    for k, v in env_changes.items():
        if v is None:
            env.pop(k, None)
        else:
            env[k] = v
    proc = subprocess.run(
        [sys.executable, "-c", CODE], capture_output=True, text=True, env=env, timeout=120
    )
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _entries(path: Path) -> list[Path]:
    return [p for p in path.rglob("*") if p.is_file()] if path.exists() else []


def test_cache_dir_honoured_and_filled(tmp_path):
    """``BAYES_QSE_CACHE_DIR`` is where the compiled program lands.  Fails if the variable is
    ignored (dir elsewhere), or if JAX's default thresholds still skip a fast compile (the
    directory stays empty)."""
    cache = tmp_path / "jaxcache"
    out = _run({"BAYES_QSE_CACHE_DIR": str(cache)})
    assert out["dir"] == str(cache) and out["jax_dir"] == str(cache)
    assert len(_entries(cache)) >= 1


def test_xdg_default(tmp_path):
    """Without ``BAYES_QSE_CACHE_DIR`` the cache lives in ``$XDG_CACHE_HOME/bayes_qse/jax``.
    Fails if the default ignores XDG (e.g. always ``~/.cache``)."""
    out = _run({"XDG_CACHE_HOME": str(tmp_path)})
    assert out["dir"] == str(tmp_path / "bayes_qse" / "jax")
    assert len(_entries(tmp_path / "bayes_qse" / "jax")) >= 1


def test_off_switch(tmp_path):
    """``BAYES_QSE_CACHE=0`` configures nothing and writes nothing, even with a directory
    named.  Fails if the off switch is not read, or read case-sensitively (``OFF``)."""
    cache = tmp_path / "jaxcache"
    for flag in ("0", "OFF"):
        out = _run({"BAYES_QSE_CACHE": flag, "BAYES_QSE_CACHE_DIR": str(cache)})
        assert out["dir"] is None and not out["jax_dir"]
    assert _entries(cache) == []
