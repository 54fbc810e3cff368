"""Simulation-based calibration (SBC) of a posterior sampler (Talts et al. 2018).

If ``theta ~ prior``, ``data ~ p(data | theta)`` and ``theta_1..theta_M`` are draws from the
*exact* posterior ``p(theta | data)``, then the rank of ``theta`` among the draws,
``rank_j = #{m : theta_{m,j} < theta_j}`` in ``{0, ..., M}``, is uniform for every coordinate
``j``.  A posterior that is too narrow piles ranks at both ends (a U-shaped histogram), one
that is too wide piles them in the middle, a biased one tilts them.  The test below bins the
ranks (chi-square) and compares the randomised probability-integral transform
``(rank + U) / (M + 1)`` with the uniform law (Kolmogorov-Smirnov), per parameter.

Everything here is a pure function of user-supplied callables, so the same code checks the
NUTS and Laplace posteriors of :mod:`bayes_qse.inference` (docs/math.md §2) or any other sampler:

- per replication: ``sample_prior(key) -> theta[d]``, ``simulate(key, theta) -> data``,
  ``sample_posterior(key, data) -> draws[M, d]``;
- batched (``batched=True``): the same callables over a leading replication axis,
  ``theta[R, d]``, a batch of data, ``draws[R, M, d]`` (for vmapped samplers).

Draws from MCMC are autocorrelated; pass ``thin`` so that the kept draws are roughly
independent, otherwise the histogram is lumpier than a uniform one and the test over-rejects.

SBC and coverage studies need one posterior per simulated dataset, hundreds of them:
:func:`bayes_qse.samplers.nuts` with ``batched=True`` runs NUTS on ``R`` datasets at once
(vmapped), on any log-density (e.g. eq. (4) plus the Normal prior of docs/math.md §2), and
serves as the batched ``sample_posterior`` here.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from .errors import BayesQSEInputError
from .types import Array


class UniformityTest(NamedTuple):
    """Per-parameter tests of ``ranks`` against the discrete uniform law on ``{0..n_draws}``.

    Attributes:
        chi2_stat, chi2_pvalue: ``[d]`` Pearson chi-square on ``n_bins`` rank bins.
        ks_stat, ks_pvalue: ``[d]`` Kolmogorov-Smirnov of the randomised PIT vs ``U(0, 1)``.
        n_bins: number of bins of the chi-square test.
        counts: ``[n_bins, d]`` observed bin counts; expected: ``[n_bins]`` expected counts.
    """

    chi2_stat: np.ndarray
    chi2_pvalue: np.ndarray
    ks_stat: np.ndarray
    ks_pvalue: np.ndarray
    n_bins: int
    counts: np.ndarray
    expected: np.ndarray


class SBCResult(NamedTuple):
    """Ranks and their uniformity tests.

    Attributes:
        ranks: ``[R, d]`` integer ranks in ``{0..n_draws}``.
        n_draws: ``M``, the number of (thinned) posterior draws per replication.
        test: the :class:`UniformityTest` of ``ranks``.
    """

    ranks: np.ndarray
    n_draws: int
    test: UniformityTest

    def flagged(self, alpha: float = 0.01) -> np.ndarray:
        """``[d]`` bool: the parameter fails calibration at level ``alpha``.

        A parameter is flagged when either test rejects at ``alpha / 2`` (Bonferroni over the
        two tests; apply your own correction across parameters if you need a family-wise level).
        """
        t = self.test
        return (t.chi2_pvalue < alpha / 2) | (t.ks_pvalue < alpha / 2)


def rank_statistic(draws: Array, theta: Array) -> Array:
    """``ranks[..., d] = #{m : draws[..., m, j] < theta[..., j]}`` for ``draws[..., M, d]``."""
    return jnp.sum(draws < theta[..., None, :], axis=-2)


def _bin_edges(n_values: int, n_bins: int) -> np.ndarray:
    """Split ``{0..n_values-1}`` into ``n_bins`` contiguous bins of (nearly) equal size."""
    return np.floor(np.linspace(0, n_values, n_bins + 1)).astype(np.int64)


def uniformity_test(
    ranks: Any, n_draws: int, n_bins: int | None = None, seed: int = 0
) -> UniformityTest:
    """Test each column of ``ranks[R, d]`` against the uniform law on ``{0, ..., n_draws}``.

    Args:
        ranks: ``[R, d]`` (or ``[R]``) integer ranks.
        n_draws: ``M``; ranks take ``M + 1`` values.
        n_bins: chi-square bins; by default the largest of ``{20, 10, 5, 2}`` (capped at
            ``M + 1``) that leaves at least 5 expected counts per bin.
        seed: seeds the uniform jitter of the randomised PIT used by the KS test.
    """
    r = np.asarray(ranks)
    if r.ndim == 1:
        r = r[:, None]
    if r.ndim != 2 or r.shape[0] < 2:
        raise BayesQSEInputError(f"ranks: expected shape (R, d) with R >= 2, got {r.shape}")
    if int(n_draws) != n_draws or n_draws < 1:
        raise BayesQSEInputError(f"n_draws: must be a positive integer, got {n_draws!r}")
    if r.min() < 0 or r.max() > n_draws:
        raise BayesQSEInputError(f"ranks: must lie in [0, {n_draws}]")
    R, d = r.shape
    n_values = int(n_draws) + 1
    if n_bins is None:
        n_bins = next((b for b in (20, 10, 5, 2) if R / b >= 5 and b <= n_values), 2)
    if not 2 <= n_bins <= n_values:
        raise BayesQSEInputError(f"n_bins: must lie in [2, {n_values}], got {n_bins}")
    edges = _bin_edges(n_values, n_bins)
    expected = R * np.diff(edges) / n_values
    counts = np.stack(
        [np.histogram(r[:, j], bins=edges.astype(float) - 0.5)[0] for j in range(d)], axis=1
    )
    from scipy import stats  # lazy: scipy.stats costs ~0.5 s to import

    chi2 = stats.chisquare(counts, expected[:, None], axis=0)
    jitter = np.random.default_rng(seed).uniform(size=r.shape)
    pit = (r + jitter) / n_values
    ks = [stats.kstest(pit[:, j], "uniform") for j in range(d)]
    return UniformityTest(
        chi2_stat=np.asarray(chi2.statistic, dtype=float),
        chi2_pvalue=np.asarray(chi2.pvalue, dtype=float),
        ks_stat=np.array([k.statistic for k in ks]),
        ks_pvalue=np.array([k.pvalue for k in ks]),
        n_bins=int(n_bins),
        counts=counts,
        expected=expected,
    )


def sbc_ranks(
    key: Array,
    sample_prior: Callable,
    simulate: Callable,
    sample_posterior: Callable,
    n_replications: int,
    *,
    thin: int = 1,
    batched: bool = False,
) -> tuple[np.ndarray, int]:
    """Ranks of prior draws among posterior draws: ``(ranks[R, d], M)``.

    For each replication ``r``: ``theta_r = sample_prior(k1)``, ``data_r = simulate(k2,
    theta_r)``, ``draws = sample_posterior(k3, data_r)[::thin]``, rank by
    :func:`rank_statistic`.  With ``batched=True`` each callable is called once on all
    ``R = n_replications`` (``sample_prior(k1, R) -> theta[R, d]``, ``simulate(k2, theta)``,
    ``sample_posterior(k3, data) -> draws[R, M, d]``).
    """
    if int(n_replications) != n_replications or n_replications < 2:
        raise BayesQSEInputError(f"n_replications: must be an integer >= 2, got {n_replications}")
    if int(thin) != thin or thin < 1:
        raise BayesQSEInputError(f"thin: must be a positive integer, got {thin!r}")
    if batched:
        k1, k2, k3 = jax.random.split(key, 3)
        theta = jnp.asarray(sample_prior(k1, n_replications))
        draws = jnp.asarray(sample_posterior(k3, simulate(k2, theta)))[:, ::thin]
        _check_draws(draws, theta)
        return np.asarray(rank_statistic(draws, theta)), int(draws.shape[-2])
    ranks, n_draws = [], None
    for k in jax.random.split(key, n_replications):
        k1, k2, k3 = jax.random.split(k, 3)
        theta = jnp.asarray(sample_prior(k1))
        draws = jnp.asarray(sample_posterior(k3, simulate(k2, theta)))[::thin]
        _check_draws(draws, theta)
        if n_draws is not None and draws.shape[0] != n_draws:
            raise BayesQSEInputError("sample_posterior: returned a varying number of draws")
        n_draws = int(draws.shape[0])
        ranks.append(np.asarray(rank_statistic(draws, theta)))
    return np.stack(ranks), int(n_draws)


def _check_draws(draws: Array, theta: Array) -> None:
    if draws.shape[:-2] != theta.shape[:-1] or draws.shape[-1] != theta.shape[-1]:
        raise BayesQSEInputError(
            f"sample_posterior: draws of shape {draws.shape} do not match theta {theta.shape}"
        )


def run_sbc(
    key: Array,
    sample_prior: Callable,
    simulate: Callable,
    sample_posterior: Callable,
    n_replications: int,
    *,
    thin: int = 1,
    batched: bool = False,
    n_bins: int | None = None,
) -> SBCResult:
    """:func:`sbc_ranks` followed by :func:`uniformity_test`."""
    ranks, n_draws = sbc_ranks(
        key, sample_prior, simulate, sample_posterior, n_replications, thin=thin, batched=batched
    )
    return SBCResult(ranks, n_draws, uniformity_test(ranks, n_draws, n_bins))


__all__ = [
    "SBCResult",
    "UniformityTest",
    "rank_statistic",
    "run_sbc",
    "sbc_ranks",
    "uniformity_test",
]
