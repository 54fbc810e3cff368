"""JAX's persistent compilation cache, on by default (a warm start for every run).

Compiling the jitted learners dominates short runs (tens of seconds per learner and game
shape); with the persistent cache a second process that compiles the same programs reads them
from disk instead.  :func:`configure` runs once, when :mod:`bayes_qse` is imported, before any
compilation:

- ``BAYES_QSE_CACHE=0`` (or ``false``/``no``/``off``) leaves JAX's cache settings alone
  (no cache unless the user configured one);
- ``BAYES_QSE_CACHE_DIR=PATH`` puts the cache in ``PATH``; otherwise
  ``$XDG_CACHE_HOME/bayes_qse/jax``, else ``~/.cache/bayes_qse/jax``;
- a cache directory already chosen by the user (``JAX_COMPILATION_CACHE_DIR`` or
  ``jax.config``) wins over the default, but not over ``BAYES_QSE_CACHE_DIR``.

Every program is cached whatever its compile time or size (JAX's defaults skip programs that
compile in under a second, which are most of ours but add up to many seconds), and the
directory is bounded to :data:`MAX_BYTES` (1 GiB, least recently used evicted).  The cache holds
compiled code only: results do not depend on whether it is warm.
"""

from __future__ import annotations

import os
from pathlib import Path

import jax

_OFF = ("0", "false", "no", "off")

#: Size bound of the cache directory (least recently used entries are evicted beyond it)
#: unless the user set ``jax_compilation_cache_max_size``; a CI-sized run of every
#: experiment writes a few MB.
MAX_BYTES = 1 << 30


def cache_enabled() -> bool:
    """``False`` when ``BAYES_QSE_CACHE`` is ``0``/``false``/``no``/``off`` (any case)."""
    return os.environ.get("BAYES_QSE_CACHE", "1").strip().lower() not in _OFF


def default_cache_dir() -> Path:
    """``$BAYES_QSE_CACHE_DIR``, else ``$XDG_CACHE_HOME/bayes_qse/jax``, else
    ``~/.cache/bayes_qse/jax``."""
    explicit = os.environ.get("BAYES_QSE_CACHE_DIR", "").strip()
    if explicit:
        return Path(explicit).expanduser()
    base = os.environ.get("XDG_CACHE_HOME", "").strip()
    root = Path(base).expanduser() if base else Path.home() / ".cache"
    return root / "bayes_qse" / "jax"


def configure() -> str | None:
    """Switch on JAX's persistent compilation cache (see the module docstring); returns the
    cache directory in use, or ``None`` when the cache is off or the directory cannot be
    created (then JAX compiles as usual: the cache is an optimisation, never a requirement)."""
    if not cache_enabled():
        return None
    user_dir = jax.config.jax_compilation_cache_dir
    if user_dir and not os.environ.get("BAYES_QSE_CACHE_DIR", "").strip():
        path = Path(user_dir)
    else:
        path = default_cache_dir()
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError:
        return None
    jax.config.update("jax_compilation_cache_dir", str(path))
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
    jax.config.update("jax_persistent_cache_min_entry_size_bytes", -1)
    if jax.config.jax_compilation_cache_max_size == -1:  # JAX's default: unbounded
        jax.config.update("jax_compilation_cache_max_size", MAX_BYTES)
    return str(path)


__all__ = [
    "MAX_BYTES",
    "cache_enabled",
    "configure",
    "default_cache_dir",
]
