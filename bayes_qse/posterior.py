"""Posterior draws of the follower's ``theta`` (docs/math.md §2): the :class:`Posterior`
container, its ArviZ 1.x conversion, the one :class:`Diagnostics` type (split R-hat, ESS,
divergences) with their :class:`PosteriorDiagnosticsWarning`, and the one builder
(:func:`laplace_posterior`, :func:`nuts_posterior`) every posterior of the library goes
through (:func:`bayes_qse.inference.sample_posterior`, :func:`bayes_qse.security.suqr_posterior`).
"""

from __future__ import annotations

import dataclasses
import warnings
from collections.abc import Iterator, Mapping

import numpy as np


class PosteriorDiagnosticsWarning(UserWarning):
    """NUTS diagnostics are bad (R-hat, effective sample size or divergences)."""


@dataclasses.dataclass(frozen=True, eq=False)
class Diagnostics(Mapping):
    """The diagnostics of a :class:`Posterior`'s draws; read as attributes or, as before, as a
    mapping (``post.diagnostics["r_hat"]``: the keys are the fields, less the ``*_eta`` ones
    when ``eta`` was not inferred).

    Attributes:
        r_hat: ``[d]`` split R-hat per coordinate (NUTS; ``None`` for Laplace, whose draws are
            independent).
        ess: ``[d]`` effective sample size (Laplace: the number of draws).
        divergences: number of divergent NUTS transitions.
        warnings: the messages issued as :class:`PosteriorDiagnosticsWarning`.
        r_hat_eta, ess_eta: the same for ``eta`` when it was inferred, else ``None``.
    """

    r_hat: np.ndarray | None
    ess: np.ndarray
    divergences: int = 0
    warnings: list = dataclasses.field(default_factory=list)
    r_hat_eta: float | None = None
    ess_eta: float | None = None

    def _keys(self) -> list[str]:
        names = [f.name for f in dataclasses.fields(self)]
        return [k for k in names if not (k.endswith("_eta") and getattr(self, k) is None)]

    def __getitem__(self, key: str):
        if key not in self._keys():
            raise KeyError(key)
        return getattr(self, key)

    def __iter__(self) -> Iterator[str]:
        return iter(self._keys())

    def __len__(self) -> int:
        return len(self._keys())


@dataclasses.dataclass(frozen=True, eq=False)
class Posterior:
    """Posterior draws of ``theta`` (docs/math.md §2).

    Attributes:
        theta: ``[M,d]`` draws (chains concatenated, chain-major).
        method: ``"nuts"`` or ``"laplace"``.
        diagnostics: :class:`Diagnostics` (``r_hat[d]``, ``ess[d]``, ``divergences``,
            ``warnings``); for Laplace the draws are independent (``ess = M``, no R-hat).
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
    diagnostics: Diagnostics
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
    from numpyro.diagnostics import effective_sample_size, split_gelman_rubin  # lazy (~1 s)

    return np.asarray(split_gelman_rubin(chains)), np.asarray(effective_sample_size(chains))


def diagnostic_warnings(
    r_hat: np.ndarray, ess: np.ndarray, n_div: int, stacklevel: int = 3
) -> list[str]:
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
        warnings.warn(
            f"sample_posterior (NUTS): {msg}", PosteriorDiagnosticsWarning, stacklevel=stacklevel
        )
    return msgs


def laplace_posterior(
    draws: np.ndarray, cov: np.ndarray, map_theta: np.ndarray, prior: str, prior_scale: float
) -> Posterior:
    """The :class:`Posterior` of ``[M,d]`` Laplace draws from ``N(map_theta, cov)``
    (independent: ``ess = M``, no R-hat)."""
    draws = np.asarray(draws)
    return Posterior(
        theta=draws,
        method="laplace",
        diagnostics=Diagnostics(r_hat=None, ess=np.full(draws.shape[-1], float(draws.shape[0]))),
        cov=cov,
        map_theta=map_theta,
        prior=prior,
        prior_scale=prior_scale,
    )


def nuts_posterior(
    chains: np.ndarray,
    diverging: np.ndarray,
    prior: str,
    prior_scale: float,
    *,
    map_theta: np.ndarray | None = None,
    eta_chains: np.ndarray | None = None,
    fixed_coordinate: int | None = None,
) -> Posterior:
    """The :class:`Posterior` of NUTS draws ``chains[C,M,d]`` with ``diverging[C,M]``: split
    R-hat, ESS and divergences (:func:`chain_diagnostics`), warned as
    :class:`PosteriorDiagnosticsWarning` (:func:`diagnostic_warnings`).

    With ``eta`` inferred (``eta_chains[C,M]``, ``theta[fixed_coordinate] = 1``), the
    diagnostics are those of the free coordinates and ``eta``; the fixed coordinate reports
    ``r_hat = 1`` and ``ess = C M``.
    """
    chains = np.asarray(chains)
    d = chains.shape[-1]
    n_div = int(np.sum(diverging))
    extra = {}
    if eta_chains is None:
        r_hat, ess = chain_diagnostics(chains)
        msgs = diagnostic_warnings(r_hat, ess, n_div, stacklevel=4)
    else:
        k = int(fixed_coordinate)
        free = np.concatenate([np.delete(chains, k, axis=-1), eta_chains[..., None]], axis=-1)
        r_free, ess_free = chain_diagnostics(free)
        r_hat = np.insert(r_free[:-1], k, 1.0)
        ess = np.insert(ess_free[:-1], k, float(chains.shape[0] * chains.shape[1]))
        extra = {"r_hat_eta": float(r_free[-1]), "ess_eta": float(ess_free[-1])}
        msgs = diagnostic_warnings(r_free, ess_free, n_div, stacklevel=4)
    return Posterior(
        theta=chains.reshape(-1, d),
        method="nuts",
        diagnostics=Diagnostics(r_hat=r_hat, ess=ess, divergences=n_div, warnings=msgs, **extra),
        num_chains=int(chains.shape[0]),
        map_theta=map_theta,
        prior=prior,
        prior_scale=prior_scale,
        diverging=np.asarray(diverging).reshape(-1),
        eta=None if eta_chains is None else np.asarray(eta_chains).reshape(-1),
    )


__all__ = [
    "Diagnostics",
    "Posterior",
    "PosteriorDiagnosticsWarning",
    "chain_diagnostics",
    "diagnostic_warnings",
    "laplace_posterior",
    "nuts_posterior",
]
