"""Test configuration: CPU only, float64 (the package enables it on import), fixed seeds, and a
compilation cache of the session's own.

The persistent compilation cache (bayes_qse/_cache.py) points at a fresh temporary directory
for the test session (inherited by every subprocess a test starts), unless the caller set
``BAYES_QSE_CACHE_DIR``: a suite run never reads programs that other processes wrote into the
user's cache (one run on a cache shared by seven concurrent writers crashed in JAX's
deserialisation of an entry), and so runs as on a fresh machine. Tests of the cache itself set
their own environment.
"""

import atexit
import os
import shutil
import tempfile

os.environ.setdefault("JAX_PLATFORMS", "cpu")
os.environ.setdefault("MPLBACKEND", "Agg")
if not os.environ.get("BAYES_QSE_CACHE_DIR", "").strip():
    _cache = tempfile.mkdtemp(prefix="bayes_qse-test-cache-")
    os.environ["BAYES_QSE_CACHE_DIR"] = _cache
    atexit.register(shutil.rmtree, _cache, ignore_errors=True)

import bayes_qse  # noqa: E402,F401  (enables float64 before any test builds arrays)
