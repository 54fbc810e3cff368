"""Error types raised on bad input.

Every error the library raises because of its *input* (a wrong shape, a probability vector
that does not sum to one, a malformed file, a bad configuration value) is a
:class:`BayesQSEInputError`, a subclass of :class:`ValueError`.  Its message names the field
that is wrong, so the command line can print it as one line and exit with status 2.
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
