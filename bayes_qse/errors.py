"""Error types raised on bad input, and the warnings about results.

Every error the library raises because of its *input* (a wrong shape, a probability vector
that does not sum to one, a malformed file, a bad configuration value) is a
:class:`BayesQSEInputError`, a subclass of :class:`ValueError`.  Its message names the field
that is wrong, so the command line can print it as one line and exit with status 2.

A result that is not what the caller asked for -- e.g. an MLE that does not exist -- is
reported by a :class:`BayesQSEWarning` (:class:`SeparationWarning`).
"""

from __future__ import annotations


class BayesQSEInputError(ValueError):
    """Bad input to a public entry point; the message names the offending field."""


class GameValidationError(BayesQSEInputError):
    """A :class:`~bayes_qse.games.Game` (or a game file) is malformed."""


class DatasetValidationError(BayesQSEInputError):
    """A :class:`~bayes_qse.data.Dataset` (or a dataset file) is malformed."""


class ConfigError(BayesQSEInputError):
    """An experiment or command-line configuration value is invalid."""


class BayesQSEWarning(UserWarning):
    """Base of the warnings the library issues about its *results* (not its input)."""


class SeparationWarning(BayesQSEWarning, RuntimeWarning):
    """The maximum-likelihood estimate does not exist: the data are (quasi-)completely
    separated, so the log-likelihood keeps increasing along some direction (docs/math.md
    §2.3).  A :class:`RuntimeWarning` too, so that filters on either catch it."""


__all__ = [
    "BayesQSEInputError",
    "BayesQSEWarning",
    "ConfigError",
    "DatasetValidationError",
    "GameValidationError",
    "SeparationWarning",
]
