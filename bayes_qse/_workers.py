"""Where the process pool's workers come from: a fork server that imports the library once.

A process pool (``--workers N``, :mod:`bayes_qse.experiments.executors`) used to start
each worker with ``spawn``, and each worker then imported JAX, NumPyro, SciPy and
bayes_qse itself, which costs a few CPU-seconds per process.  For a short sweep that is as
much as the units themselves.  :func:`pool_context` gives the pool :mod:`multiprocessing`'s
*fork server* instead.  The server is a fresh interpreter (started by ``exec``, not forked
from the caller) that imports the modules it is told to (:data:`PRELOAD`) once.  Each
worker is then forked from it, with all of that already imported.

Forking is safe there because importing bayes_qse starts no JAX backend (no XLA threads,
no devices; a test checks it).  Every worker starts its own backend after the fork, with
the XLA thread flags of its environment.  The server is started with those flags pinned
to one thread (:func:`pinned_xla_flags`), as a spawned worker's environment was.

:func:`start_server` starts the server early: the ``bayes-qse`` command calls it before it
imports JAX, so the server imports while the driver imports and validates.

The server belongs to the process and keeps the environment it was started with.  A pool
started later under another environment (another value of any variable but
:data:`IGNORED_VARIABLES`, or another ``sys.path``) gets ``spawn`` workers instead, which
import everything afresh, as before.  So does a server this module did not start, and
every platform but Linux (macOS's system libraries are not safe to fork: Python's own
default there is ``spawn``), and ``BAYES_QSE_POOL=spawn`` (:data:`POOL_ENV`) everywhere.
"""

from __future__ import annotations

import multiprocessing
import os
import re
import sys
from collections.abc import Sequence
from multiprocessing import forkserver

from .errors import ConfigError

#: Environment variable choosing how pool workers start: ``forkserver`` (the default, on
#: Linux) or ``spawn``.
POOL_ENV = "BAYES_QSE_POOL"
#: Modules the fork server imports by default: the unit engine and the online units (what
#: a sweep's workers run; not the driver's own modules, such as the gathering's xarray), and
#: SciPy's special functions, which the library imports only where it uses them (the
#: confidence sets' chi-square radii): imported once here, not once in each worker.
PRELOAD = (
    "bayes_qse.experiments.executors",
    "bayes_qse.experiments.online_units",
    "scipy.special",
)
#: Variables left out when comparing environments: pytest's, and those that importing JAX
#: sets itself (``jax/__init__.py``, ``jax/_src/cloud_tpu_init.py``), in the server as in
#: the driver.
IGNORED_VARIABLES = (
    "PYTEST_",
    "TF_CPP_MIN_LOG_LEVEL",
    "TPU_",
    "LIBTPU_",
    "GRPC_VERBOSITY",
    "ENABLE_RUNTIME_UPTIME_TELEMETRY",
    "TENSORSTORE_",
)
_PIN_FLAGS = re.compile(r"\s*(--)?(xla_cpu_multi_thread_eigen|intra_op_parallelism_threads)=\S*")
#: The environment the fork server was started with by :func:`start_server` (``None``: not
#: started by this module).
_server_env: tuple | None = None


def pinned_xla_flags(threads: int, flags: str | None = None) -> str:
    """``flags`` (default: ``$XLA_FLAGS``) with XLA's CPU thread settings replaced by
    ``threads`` intra-op threads (one: Eigen's thread pool off)."""
    base = _PIN_FLAGS.sub("", flags if flags is not None else os.environ.get("XLA_FLAGS", ""))
    pin = f"intra_op_parallelism_threads={threads}"
    if threads == 1:
        pin = f"--xla_cpu_multi_thread_eigen=false {pin}"
    return f"{base.strip()} {pin}".strip()


def worker_environ() -> dict[str, str]:
    """The environment a pool worker gets: this process's, with XLA pinned to one thread."""
    return {**os.environ, "XLA_FLAGS": pinned_xla_flags(1)}


def _fingerprint() -> tuple:
    env = {k: v for k, v in worker_environ().items() if not k.startswith(IGNORED_VARIABLES)}
    return tuple(sorted(env.items())), tuple(sys.path)


def _running_elsewhere() -> bool:
    """Whether a fork server runs that this module did not start (its environment unknown)."""
    return getattr(forkserver._forkserver, "_forkserver_pid", None) is not None


def start_method() -> str:
    """How pool workers start: ``$BAYES_QSE_POOL`` (``forkserver``, the default, or ``spawn``).

    Raises:
        ConfigError: another value (one line naming the variable)."""
    value = os.environ.get(POOL_ENV, "").strip().lower() or "forkserver"
    if value not in ("forkserver", "spawn"):
        raise ConfigError(f"{POOL_ENV}: must be 'forkserver' or 'spawn', got {value!r}")
    return value


def start_server(preload: Sequence[str] = PRELOAD) -> bool:
    """Start the fork server now, importing ``preload``, unless it already runs; return
    whether pools of this process may fork their workers from it (it was started by this
    module under the environment of now).

    Returns at once: the server imports in the background.  A worker that needs a module
    the server has not imported imports it itself."""
    global _server_env
    if start_method() == "spawn":
        return False
    if _server_env is not None:
        return _server_env == _fingerprint()
    if not sys.platform.startswith("linux") or _running_elsewhere():
        return False
    fingerprint = _fingerprint()
    forkserver.set_forkserver_preload(list(preload))
    saved = os.environ.get("XLA_FLAGS")
    os.environ["XLA_FLAGS"] = worker_environ()["XLA_FLAGS"]  # inherited by the server
    try:
        forkserver.ensure_running()
    finally:
        if saved is None:
            os.environ.pop("XLA_FLAGS", None)
        else:
            os.environ["XLA_FLAGS"] = saved
    _server_env = fingerprint
    return True


def pool_context(preload: Sequence[str] = PRELOAD):
    """The :mod:`multiprocessing` context of a process pool: the fork server's
    (:func:`start_server`) where this process may use it, else ``spawn``."""
    return multiprocessing.get_context("forkserver" if start_server(preload) else "spawn")


__all__ = [
    "POOL_ENV",
    "PRELOAD",
    "pinned_xla_flags",
    "pool_context",
    "start_method",
    "start_server",
    "worker_environ",
]
