"""One settings idiom for the experiments' configs: :class:`ExperimentConfig`, the frozen
:class:`~bayes_qse.settings.Settings` dataclass each experiment's config derives from, and the
typed merge that builds one from a mapping (a TOML file, ``--config``, a sweep spec, a result
manifest).

An experiment's config (``OnlineRegretConfig``, ``SecurityGamesConfig``, ...) has one field
per TOML key, its default the CI-sized value; lists are held as tuples and tables (a game's
settings, the ``[learner]`` table) as :class:`Table`, so a config is immutable and hashable.
Made, it checks itself (:meth:`ExperimentConfig.check`: a one-line
:class:`~bayes_qse.errors.ConfigError` naming the key, raised before anything is
allocated); :meth:`ExperimentConfig.from_mapping` merges a mapping over the defaults with
:func:`merge_config` (types checked against the defaults, retired names and flat learner keys
read by the one-release shims) and makes the config; :meth:`ExperimentConfig.to_mapping` is
the published form (plain dicts and lists: what ``manifest.json`` and the runners read), so
``from_mapping(c).to_mapping() == c`` for every valid, complete ``c``.
"""

from __future__ import annotations

import copy
import dataclasses
import warnings
from collections.abc import Iterator, Mapping
from typing import Any, ClassVar

from ..errors import ConfigError
from ..settings import Settings, upgrade


class Table(Mapping):
    """An immutable, hashable mapping: a table of an experiment config (a game's settings,
    ``[learner]``), its lists held as tuples and its sub-tables as tables."""

    __slots__ = ("_items",)

    def __init__(self, values: Mapping[str, Any] | None = None, /, **kw: Any) -> None:
        items = {**dict(values or {}), **kw}
        object.__setattr__(self, "_items", {k: freeze(v) for k, v in items.items()})

    def __getitem__(self, key: str) -> Any:
        return self._items[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._items)

    def __len__(self) -> int:
        return len(self._items)

    def __hash__(self) -> int:
        return hash(tuple(self._items.items()))

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError("a Table is immutable")

    def __repr__(self) -> str:
        return f"Table({self._items!r})"

    def __reduce__(self):
        return (Table, (self._items,))


def freeze(value: Any) -> Any:
    """``value`` with every mapping made a :class:`Table` and every list a tuple (deeply)."""
    if isinstance(value, Mapping):
        return value if isinstance(value, Table) else Table(value)
    if isinstance(value, list | tuple):
        return tuple(freeze(v) for v in value)
    return value


def thaw(value: Any) -> Any:
    """The published form of ``value``: tables as dicts, tuples as lists (deeply)."""
    if isinstance(value, Mapping):
        return {k: thaw(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [thaw(v) for v in value]
    return value


@dataclasses.dataclass(frozen=True)
class ExperimentConfig(Settings):
    """Base of every experiment's config: a frozen dataclass with a default for every field
    (lists as tuples, tables as :class:`Table`), checked when made by :meth:`check`.
    ``KEYS`` names the fields whose TOML key is not a Python name (``farsighted_random`` is
    the key ``farsighted-random``)."""

    KEYS: ClassVar[dict[str, str]] = {}

    def __post_init__(self) -> None:
        for f in dataclasses.fields(self):
            object.__setattr__(self, f.name, freeze(getattr(self, f.name)))
        self.check(self.to_mapping())

    def check(self, config: dict[str, Any]) -> None:
        """Reject a config the experiment cannot run, given its published form ``config``
        (a one-line :class:`ConfigError` naming the key); subclasses override it."""

    @classmethod
    def defaults(cls) -> dict[str, Any]:
        """The published form of the defaults (not checked: nothing is built)."""
        return {
            cls.KEYS.get(f.name, f.name): thaw(
                f.default if f.default is not dataclasses.MISSING else f.default_factory()
            )
            for f in dataclasses.fields(cls)
        }

    @classmethod
    def preset(cls, changes: Mapping[str, Any] | None = None, /, **kw: Any) -> dict[str, Any]:
        """The published form of the defaults with ``changes`` and ``kw`` (typed by
        :func:`merge_config`, not checked): a named configuration such as ``FULL_CONFIG``."""
        return merge_config(cls.defaults(), {**dict(changes or {}), **kw})

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any] | None = None):
        """The config of ``values`` (any subset of the keys) over the defaults, merged by
        :func:`merge_config` and checked.

        Raises:
            ConfigError: an unknown key, a value of the wrong type or a value :meth:`check`
                refuses (naming the key).
        """
        merged = merge_config(cls.defaults(), values or {})
        field = {key: name for name, key in cls.KEYS.items()}
        return cls(**{field.get(k, k): v for k, v in merged.items()})

    def to_mapping(self) -> dict[str, Any]:
        """The published form: plain dicts and lists, keys in field order."""
        return {
            self.KEYS.get(f.name, f.name): thaw(getattr(self, f.name))
            for f in dataclasses.fields(self)
        }

    to_dict = to_mapping


def _coerce(key: str, value: Any, default: Any) -> Any:
    """Return ``value`` checked (and int->float widened) against the type of ``default``."""
    if default is None:
        return value
    if isinstance(default, bool):
        if not isinstance(value, bool):
            raise ConfigError(f"config: {key} must be a boolean, got {value!r}")
        return value
    if isinstance(default, int):
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"config: {key} must be an integer, got {value!r}")
        return value
    if isinstance(default, float):
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ConfigError(f"config: {key} must be a number, got {value!r}")
        value = float(value)
        infinite = default in (float("inf"), float("-inf"))  # e.g. mle_prior_scale = inf
        if value != value or (value in (float("inf"), float("-inf")) and not infinite):
            raise ConfigError(f"config: {key} must be finite, got {value!r}")
        return value
    if isinstance(default, str):
        if not isinstance(value, str):
            raise ConfigError(f"config: {key} must be a string, got {value!r}")
        return value
    if isinstance(default, list | tuple):
        if not isinstance(value, list | tuple):
            raise ConfigError(f"config: {key} must be a list, got {value!r}")
        if default:
            return [_coerce(f"{key}[{i}]", v, default[0]) for i, v in enumerate(value)]
        return list(value)
    if isinstance(default, Mapping):
        if not isinstance(value, Mapping):
            raise ConfigError(f"config: {key} must be a table, got {value!r}")
        return _merge(dict(default), value, prefix=f"{key}.")
    return value


#: Flat keys of the previous release whose ``[learner]`` field has another name
#: (``security_games``' repeated-game settings), read by :func:`nest_learner_keys`.
FLAT_LEARNER_KEYS = {
    "online_starts": "n_starts",
    "online_steps": "steps",
    "online_learning_rate": "learning_rate",
    "online_newton_steps": "newton_steps",
}


def nest_learner_keys(
    base: Mapping[str, Any], updates: Mapping[str, Any], where: str = "config"
) -> dict[str, Any]:
    """``updates`` with every top-level key that is a setting of ``base``'s ``learner``
    table (and not a top-level key of ``base``) moved under ``learner``: the one-release shim
    that reads configs and result manifests written before the learner settings moved into
    ``[learner]``, with a DeprecationWarning naming the keys (a key of
    :data:`FLAT_LEARNER_KEYS` goes to its field).  A no-op when ``base`` has no ``learner``
    table or nothing is flat.

    Raises:
        ConfigError: a setting given both flat and under ``[learner]``, or a ``learner``
            entry that is not a table.
    """
    table = base.get("learner")
    if not isinstance(table, Mapping):
        return dict(updates)
    # the renames are security_games' (its table has every new name)
    renames = FLAT_LEARNER_KEYS if set(FLAT_LEARNER_KEYS.values()) <= set(table) else {}
    field = {k: renames.get(k, k) for k in updates if k not in base}
    flat = [k for k, f in field.items() if f in table]
    if not flat:
        return dict(updates)
    out = {k: v for k, v in updates.items() if k not in flat}
    nested = out.get("learner", {})
    if not isinstance(nested, Mapping):
        raise ConfigError(f"{where}: learner must be a table, got {nested!r}")
    both = sorted({field[k] for k in flat} & set(nested))
    if both:
        raise ConfigError(
            f"{where}: {', '.join(both)} given both at the top level and under "
            f"[learner]; give them only under [learner]"
        )
    named = ", ".join(k if field[k] == k else f"{k} as {field[k]}" for k in flat)
    warnings.warn(
        f"{where}: learner settings at the top level ({named}) are read under "
        f"[learner], where they belong now; " + "the old form is read until the next release",
        DeprecationWarning,
        stacklevel=4,
    )
    out["learner"] = {**nested, **{field[k]: updates[k] for k in flat}}
    return out


def _merge(base: dict[str, Any], updates: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    # the one-release shims: retired setting names (bayes_qse.settings.RENAMED) are read, and
    # flat learner settings are moved into the learner table
    updates = upgrade(updates, f"config {prefix}".rstrip(". "), known=base)
    updates = nest_learner_keys(base, updates, f"config {prefix}".rstrip(". "))
    out = copy.deepcopy(base)
    for key, value in updates.items():
        if key not in base:
            raise ConfigError(
                f"config: unknown key '{prefix}{key}'; known keys: {', '.join(sorted(base))}"
            )
        out[key] = _coerce(f"{prefix}{key}", value, base[key])
    return out


def merge_config(
    base: Mapping[str, Any], updates: Mapping[str, Any], prefix: str = ""
) -> dict[str, Any]:
    """``base`` updated by ``updates``, each value checked against the type of its default
    (no string read as a boolean or a number; integers widened to floats; nested tables
    merged key by key): the one type check of ``run --config``, the sweep specs and the
    scripts' TOML files.

    Raises:
        ConfigError: an unknown key or a value of the wrong type (naming ``prefix + key``).
    """
    return _merge(dict(base), updates, prefix)


__all__ = [
    "ExperimentConfig",
    "FLAT_LEARNER_KEYS",
    "Table",
    "freeze",
    "merge_config",
    "nest_learner_keys",
    "thaw",
]
