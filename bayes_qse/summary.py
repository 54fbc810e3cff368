"""The JSON-able summary of a fit printed by ``bayes-qse fit`` (docs/math.md §6, eq. 4)."""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np

from .data import Dataset
from .errors import BayesQSEInputError
from .inference import fit_mle, sample_posterior


def _finite_or_none(x: Any) -> Any:
    arr = np.asarray(x, np.float64)
    out = [None if not np.isfinite(v) else float(v) for v in arr.reshape(-1)]
    return np.array(out, dtype=object).reshape(arr.shape).tolist() if arr.ndim else out[0]


def _record_warnings(call: Any) -> tuple[Any, list[str]]:
    """``(call(), messages)``: every warning ``call`` issues, recorded (each once, in order)
    instead of shown."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = call()
    messages: list[str] = []
    for w in caught:
        text = f"{w.category.__name__}: {' '.join(str(w.message).split())}"
        if text not in messages:
            messages.append(text)
    return result, messages


#: ``fit_summary`` warns when a finite standard error exceeds this many times
#: ``max(1, |estimate|)``: the data barely constrain that coordinate.
WEAK_SE_RATIO = 100.0


def _weak_identification_messages(theta: np.ndarray, std_err: np.ndarray) -> list[str]:
    """One message if some finite ``std_err[k] > WEAK_SE_RATIO * max(1, |theta[k]|)``."""
    theta, se = np.asarray(theta, np.float64), np.asarray(std_err, np.float64)
    weak = np.isfinite(se) & (se > WEAK_SE_RATIO * np.maximum(1.0, np.abs(theta)))
    if not np.any(weak):
        return []
    idx = [int(i) for i in np.flatnonzero(weak)]
    return [
        f"IdentifiabilityWarning: std err up to {float(se[weak].max()):.3g} on coordinate(s) "
        f"{idx} of theta (> {WEAK_SE_RATIO:g} x max(1, |estimate|)): the data barely "
        "constrain them (too few episodes, or a follower action never or always chosen, so "
        "the MLE may be at infinity)"
    ]


def fit_summary(
    dataset: Dataset,
    game: Any,
    method: str = "mle",
    seed: int = 0,
    num_samples: int = 1000,
    num_warmup: int = 500,
    progress: Any = None,
) -> dict:
    """The JSON-able result of ``bayes-qse fit`` (docs/math.md, eq. 4).

    ``mle``: ``theta``, ``cov``, ``log_likelihood``, ``std_err``, ``converged`` (False when
    the MLE does not exist, docs/math.md §2.3); ``laplace``: ``mean``, ``sd``;
    ``nuts``: ``mean``, ``sd``, ``r_hat``, ``ess``.  Lists of floats; a non-finite entry (a
    non-identified direction) is ``None``.

    Every warning the fit issues (:class:`IdentifiabilityWarning`, Newton's non-convergence,
    :class:`PosteriorDiagnosticsWarning` for divergences, R-hat or ESS) is recorded, not
    shown: ``"warnings"`` is the list of their one-line texts (``"Category: message"``), so
    that the command line can print them and carry them in ``--json``.  ``progress`` is passed
    to :func:`sample_posterior` (NUTS only).
    """
    if method == "mle":
        fit, msgs = _record_warnings(lambda: fit_mle(dataset, game))
        msgs += _weak_identification_messages(fit.theta, fit.std_err)
        return {
            "theta": _finite_or_none(fit.theta),
            "cov": _finite_or_none(fit.cov),
            "log_likelihood": _finite_or_none(fit.log_likelihood),
            "std_err": _finite_or_none(fit.std_err),
            "converged": bool(fit.converged),
            "warnings": msgs,
        }
    if method not in ("laplace", "nuts"):
        raise BayesQSEInputError(f"method: must be 'mle', 'laplace' or 'nuts', got {method!r}")
    msgs = []
    if int(getattr(dataset, "n_episodes", 1)) == 0:
        msgs.append(
            "IdentifiabilityWarning: the dataset has no episodes; the posterior is the prior"
        )
    extra = {"progress": progress} if method == "nuts" and progress is not None else {}
    post, post_msgs = _record_warnings(
        lambda: sample_posterior(
            dataset,
            game,
            method=method,
            num_samples=num_samples,
            num_warmup=num_warmup,
            seed=seed,
            **extra,
        )
    )
    out = {
        "mean": _finite_or_none(post.mean),
        "sd": _finite_or_none(post.sd),
        "warnings": [*msgs, *post_msgs],
    }
    if method == "nuts":
        out["r_hat"] = _finite_or_none(post.diagnostics["r_hat"])
        out["ess"] = _finite_or_none(post.diagnostics["ess"])
    return out


__all__ = ["WEAK_SE_RATIO", "fit_summary"]
