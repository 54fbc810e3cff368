"""Test configuration: CPU only, float64 (the package enables it on import), fixed seeds, and a
compilation cache of the session's own.

The persistent compilation cache (bayes_qse/_cache.py) points at a fresh temporary directory
for the test session (inherited by every subprocess a test starts), unless the caller set
``BAYES_QSE_CACHE_DIR``: a suite run never reads programs that other processes wrote into the
user's cache (one run on a cache shared by seven concurrent writers crashed in JAX's
deserialisation of an entry), and so runs as on a fresh machine. Tests of the cache itself set
their own environment.

Every compiled XLA program holds a few memory mappings of its own, and the whole suite in one
process compiles enough of them to pass Linux's ``vm.max_map_count`` (65530 by default): a CI
run died with a segmentation fault inside XLA's compiler at test 1271 of 1371, with the count
rising by about 50 per test. After each test, when the process holds more than a third of the
limit, the compiled programs are dropped (``jax.clear_caches``); later tests reload them from
the session's persistent cache.
"""

import atexit
import gc
import os
import shutil
import tempfile

import pytest

os.environ.setdefault("JAX_PLATFORMS", "cpu")
os.environ.setdefault("MPLBACKEND", "Agg")
if not os.environ.get("BAYES_QSE_CACHE_DIR", "").strip():
    _cache = tempfile.mkdtemp(prefix="bayes_qse-test-cache-")
    os.environ["BAYES_QSE_CACHE_DIR"] = _cache
    atexit.register(shutil.rmtree, _cache, ignore_errors=True)

import bayes_qse  # noqa: E402,F401  (enables float64 before any test builds arrays)


def _map_count() -> int:
    """Memory mappings this process holds (0 where ``/proc`` does not exist)."""
    try:
        with open("/proc/self/maps", "rb") as f:
            return sum(1 for _ in f)
    except OSError:
        return 0


def _map_limit() -> int:
    try:
        with open("/proc/sys/vm/max_map_count") as f:
            return int(f.read())
    except (OSError, ValueError):
        return 65530


_CLEAR_ABOVE = _map_limit() // 3


@pytest.fixture(autouse=True)
def _release_compiled_programs():
    """Drop JAX's compiled programs once the process holds a third of its mapping limit."""
    yield
    if _map_count() > _CLEAR_ABOVE:
        import jax

        jax.clear_caches()
        gc.collect()


#: Modules that start a Ray cluster: one pytest-xdist worker runs them all, one after the other.
_RAY_MODULES = ("test_sweeps_cluster", "test_sweeps_identity", "test_sweeps_run")


def pytest_collection_modifyitems(config, items):
    """Under ``pytest -n N --dist loadgroup`` (``make test``), a module's tests stay on one worker
    (they share its compiled functions and module fixtures) and the Ray modules share one."""
    for item in items:
        name = item.module.__name__.rpartition(".")[2] if item.module else item.nodeid
        item.add_marker(pytest.mark.xdist_group("ray" if name in _RAY_MODULES else name))
