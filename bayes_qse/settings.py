"""One settings idiom and one vocabulary for the learners' settings.

Every learner's settings -- :class:`~bayes_qse.learners.LearnerConfig` (online),
:class:`~bayes_qse.learners.offline.OfflineLearnerConfig` and
:class:`~bayes_qse.security.online.SecurityLearnerConfig` -- is a frozen dataclass deriving
from :class:`Settings`: validated when it is made (a :class:`~bayes_qse.errors.ConfigError`
naming the field, on one line), hashable (so it may be a static argument of ``jax.jit``), and
built from a mapping (a TOML table, a manifest's config) by :meth:`Settings.from_mapping`.
So are the experiments' game kinds (:mod:`bayes_qse.experiments.games`) and each
experiment's whole config (:class:`~bayes_qse.experiments.config.ExperimentConfig`).

One name per quantity: the Gaussian prior on ``theta`` is set by its scale ``prior_scale``
(``sigma`` of ``Normal(0, sigma^2 I)``; the precision ``1 / sigma^2`` is derived), the
confidence by ``delta`` (the failure probability; the level is ``1 - delta``) and the Monte
Carlo draws by ``num_draws``.  :data:`RENAMED` lists the retired names; :func:`upgrade` reads
them, for one release, with a DeprecationWarning (old configs and result manifests still load
and rerun bit for bit: ``ridge = 1`` is ``prior_scale = 1``, ``confidence_level = c`` is
``delta = 1 - c`` computed as before).
"""

from __future__ import annotations

import dataclasses
import math
import warnings
from collections.abc import Callable, Collection, Mapping
from typing import Any, NamedTuple

import numpy as np

from .errors import ConfigError


def _scale_of_precision(precision: float) -> float:
    """``sigma = precision^(-1/2)``; a zero precision (no penalty) is an infinite scale."""
    return math.inf if precision == 0 else 1.0 / math.sqrt(precision)


class Renamed(NamedTuple):
    """A retired setting: its new ``name``, the conversion of its value, and how to read it."""

    name: str
    convert: Callable[[float], float]
    note: str


#: Retired setting names (read for one release with a DeprecationWarning).
RENAMED: dict[str, Renamed] = {
    "confidence_level": Renamed("delta", lambda c: 1.0 - c, "delta = 1 - confidence_level"),
    "ridge": Renamed("prior_scale", _scale_of_precision, "prior_scale = ridge ** -0.5"),
    "mle_ridge": Renamed(
        "mle_prior_scale", _scale_of_precision, "mle_prior_scale = mle_ridge ** -0.5 (0: inf)"
    ),
    "n_draws": Renamed("num_draws", lambda n: n, "the same count"),
}


#: The end of every retired-name (and retired-shape) warning (a ``warnings`` filter pattern;
#: the CLI shows them).
RETIRED_MESSAGE = ".*is read until the next release"


def upgrade(values: Mapping[str, Any], where: str, known: Collection[str] = ()) -> dict[str, Any]:
    """``values`` with every retired name of :data:`RENAMED` replaced by its new name and
    converted value, warning (DeprecationWarning) once per retired name.  Names in ``known``
    are left alone (a setting of that name that is not the retired quantity).

    Raises:
        ConfigError: both a retired name and its new name are given, or a retired name's
            value is not a number >= 0.
    """
    out = dict(values)
    for old, renamed in RENAMED.items():
        if old not in out or old in known:
            continue
        if renamed.name in out:
            raise ConfigError(
                f"{where}: {old!r} is the retired name of {renamed.name!r}; give only "
                f"{renamed.name!r}"
            )
        value = out.pop(old)
        if isinstance(value, bool) or not isinstance(value, int | float | np.number):
            raise ConfigError(f"{where}: {old} must be a number, got {value!r}")
        if not value >= 0:
            raise ConfigError(f"{where}: {old} must be >= 0, got {value!r}")
        warnings.warn(
            f"{where}: setting {old!r} is renamed {renamed.name!r} ({renamed.note}); "
            + "the old name is read until the next release",
            DeprecationWarning,
            stacklevel=3,
        )
        out[renamed.name] = renamed.convert(value)
    return out


# ---------------------------------------------------------------------------------------
# Checks (each raises a one-line ConfigError naming the field)
# ---------------------------------------------------------------------------------------


def check_choice(name: str, value: Any, allowed: Collection[Any]) -> None:
    """``value`` is one of ``allowed``."""
    if value not in allowed:
        raise ConfigError(f"{name}: must be one of {tuple(allowed)}, got {value!r}")


def check_count(name: str, value: Any, minimum: int = 1) -> None:
    """``value`` is an integer (not a bool) ``>= minimum``."""
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < minimum:
        raise ConfigError(f"{name}: must be an integer >= {minimum}, got {value!r}")


def check_real(
    name: str,
    value: Any,
    low: float = -math.inf,
    high: float = math.inf,
    *,
    open_low: bool = False,
    open_high: bool = False,
    finite: bool = True,
) -> None:
    """``value`` is a real number (not a bool) in the interval ``low .. high`` (each end
    closed unless ``open_*``), finite unless ``finite=False``."""
    interval = f"{'(' if open_low else '['}{low}, {high}{')' if open_high else ']'}"
    if isinstance(value, bool) or not isinstance(value, int | float | np.number):
        raise ConfigError(f"{name}: must be a number in {interval}, got {value!r}")
    inside = (value > low if open_low else value >= low) and (
        value < high if open_high else value <= high
    )
    if not inside or (finite and not math.isfinite(value)):
        raise ConfigError(
            f"{name}: must be a {'finite ' if finite else ''}number in {interval}, got {value!r}"
        )


# ---------------------------------------------------------------------------------------
# The base class
# ---------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Settings:
    """Base of every settings dataclass: subclasses are ``@dataclasses.dataclass(frozen=True)``
    with defaults for every field and validate in ``__post_init__``."""

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any] | None = None):
        """Settings from a mapping of (a subset of) the fields; retired names are read with a
        DeprecationWarning (:func:`upgrade`).

        Raises:
            ConfigError: an unknown key (naming it and the known ones) or a bad value.
        """
        known = [f.name for f in dataclasses.fields(cls)]
        values = upgrade(dict(values or {}), cls.__name__, known)
        unknown = sorted(set(values) - set(known))
        if unknown:
            raise ConfigError(
                f"{cls.__name__}: unknown setting(s) {', '.join(unknown)}; known: {sorted(known)}"
            )
        return cls(**values)

    def replace(self, **changes: Any):
        """A copy with ``changes`` (validated again)."""
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        """The settings as a plain dict (JSON- and TOML-able values)."""
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}


__all__ = [
    "RENAMED",
    "RETIRED_MESSAGE",
    "Renamed",
    "Settings",
    "check_choice",
    "check_count",
    "check_real",
    "upgrade",
]
