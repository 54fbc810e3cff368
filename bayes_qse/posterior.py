"""Posterior draws of the follower's ``theta`` (docs/math.md §2): the :class:`Posterior`
container, its ArviZ 1.x conversion, and the NUTS chain diagnostics (split R-hat, ESS,
divergences) with their :class:`PosteriorDiagnosticsWarning`.
"""

from __future__ import annotations

import dataclasses
import warnings

import numpy as np
from numpyro.diagnostics import effective_sample_size, split_gelman_rubin


class PosteriorDiagnosticsWarning(UserWarning):
    """NUTS diagnostics are bad (R-hat, effective sample size or divergences)."""


@dataclasses.dataclass(frozen=True, eq=False)
class Posterior:
    """Posterior draws of ``theta`` (docs/math.md §2).

    Attributes:
        theta: ``[M,d]`` draws (chains concatenated, chain-major).
        method: ``"nuts"`` or ``"laplace"``.
        diagnostics: ``r_hat[d]``, ``ess[d]``, ``divergences`` (int) and ``warnings``
            (list of str); for Laplace the draws are independent (``ess = M``, no R-hat).
        num_chains: number of chains (``theta`` reshapes to ``[chains, M/chains, d]``).
        cov: ``[d,d]`` the Laplace covariance ``(I + Lambda)^-1`` (None for NUTS).
        map_theta: ``[d]`` the MAP (Laplace; for NUTS the chains' start, when Newton converged)
            or None.
        prior: ``"normal"`` or ``"flat"``; ``prior_scale`` its sigma.
        diverging: ``[M]`` NUTS divergence flags (None for Laplace).
        eta: ``[M]`` draws of ``eta`` when it was inferred (``eta_unknown``), else None.
    """

    theta: np.ndarray
    method: str
    diagnostics: dict
    num_chains: int = 1
    cov: np.ndarray | None = None
    map_theta: np.ndarray | None = None
    prior: str = "normal"
    prior_scale: float = 1.0
    diverging: np.ndarray | None = None
    eta: np.ndarray | None = None

    @property
    def mean(self) -> np.ndarray:
        """``[d]`` posterior mean of the draws."""
        return self.theta.mean(axis=0)

    @property
    def sd(self) -> np.ndarray:
        """``[d]`` posterior standard deviation of the draws."""
        return self.theta.std(axis=0, ddof=1)

    @property
    def n_draws(self) -> int:
        return int(self.theta.shape[0])

    def chains(self) -> np.ndarray:
        """Draws as ``[chains, draws, d]``."""
        return self.theta.reshape(self.num_chains, -1, self.theta.shape[-1])

    def to_arviz(self):
        """An ArviZ 1.x ``xarray.DataTree`` with ``posterior.theta[chain, draw, feature]``.

        NUTS results also carry ``sample_stats.diverging``.  Built with
        ``arviz_base.from_dict`` (equivalent to ``from_numpyro`` for this single-site model).
        """
        import arviz_base  # lazy: ArviZ loads only when a user converts

        d = self.theta.shape[-1]
        data: dict[str, dict[str, np.ndarray]] = {"posterior": {"theta": self.chains()}}
        if self.eta is not None:
            data["posterior"]["eta"] = np.asarray(self.eta).reshape(self.num_chains, -1)
        if self.diverging is not None:
            data["sample_stats"] = {
                "diverging": np.asarray(self.diverging, bool).reshape(self.num_chains, -1)
            }
        return arviz_base.from_dict(
            data,
            coords={"feature": np.arange(d)},
            dims={"theta": ["feature"]},
            attrs={"posterior": {"inference_method": self.method, "prior": self.prior}},
        )


def chain_diagnostics(chains: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Split R-hat and ESS per coordinate from ``[chains, draws, d]`` (NumPyro's estimators)."""
    if chains.shape[1] < 4:  # too few draws to split: unknown
        nan = np.full(chains.shape[2:], np.nan)
        return nan, nan
    return np.asarray(split_gelman_rubin(chains)), np.asarray(effective_sample_size(chains))


def diagnostic_warnings(r_hat: np.ndarray, ess: np.ndarray, n_div: int) -> list[str]:
    """Messages (also issued as :class:`PosteriorDiagnosticsWarning`) for bad diagnostics."""
    msgs = []
    if np.any(~np.isfinite(r_hat)) or np.any(~np.isfinite(ess)):
        msgs.append("R-hat/ESS undefined (fewer than 4 draws per chain, or a stuck chain)")
    else:
        if np.max(r_hat) > 1.01:
            msgs.append(f"R-hat up to {np.max(r_hat):.3f} (> 1.01): chains have not mixed")
        if np.min(ess) < 100:
            msgs.append(f"effective sample size as low as {np.min(ess):.0f} (< 100)")
    if n_div:
        msgs.append(f"{n_div} divergent transitions")
    for msg in msgs:
        warnings.warn(f"sample_posterior (NUTS): {msg}", PosteriorDiagnosticsWarning, stacklevel=3)
    return msgs


__all__ = [
    "Posterior",
    "PosteriorDiagnosticsWarning",
    "chain_diagnostics",
    "diagnostic_warnings",
]
