"""Test configuration: CPU only, float64 (the package enables it on import), fixed seeds."""

import os

os.environ.setdefault("JAX_PLATFORMS", "cpu")
os.environ.setdefault("MPLBACKEND", "Agg")

import bayes_qse  # noqa: E402,F401  (enables float64 before any test builds arrays)
