"""Console plumbing shared by the ``bayes-qse`` command and the experiment scripts
(docs/math.md §6): exit statuses, one-line errors and warnings, :func:`guarded`, the argparse
types and :class:`OneLineArgumentParser`.

It sits below both :mod:`bayes_qse.cli` and :mod:`bayes_qse.experiments`, so that neither
imports the other for these helpers.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
from collections.abc import Callable
from typing import Any, NoReturn

from ._validate import SEED_MAX
from .errors import BayesQSEInputError

EXIT_OK = 0
EXIT_INTERNAL = 1
EXIT_BAD_INPUT = 2
EXIT_INTERRUPTED = 130
EXIT_BROKEN_PIPE = 141  # 128 + SIGPIPE, what a shell reports for a command killed by SIGPIPE


def _silence_stdout() -> None:
    """Point stdout at /dev/null so that the interpreter's final flush cannot fail again."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError, AttributeError):  # pragma: no cover - stdout without a fd
        pass


def _install_signal_handlers() -> None:
    """Console use only: the first Ctrl-C raises ``KeyboardInterrupt`` (one line, status
    130, see :func:`guarded`); a second one, while the first is being handled (JAX and
    NumPyro can take a while to unwind), prints one line and exits 130 at once."""
    state = {"interrupted": False}

    def on_sigint(signum: int, frame: Any) -> None:
        if state["interrupted"]:
            try:
                os.write(2, b"bayes-qse: error: interrupted again; exiting now\n")
            finally:
                os._exit(EXIT_INTERRUPTED)
        state["interrupted"] = True
        raise KeyboardInterrupt

    try:
        signal.signal(signal.SIGINT, on_sigint)
    except ValueError:  # pragma: no cover - not the main thread
        pass


def _one_line(text: str) -> str:
    return " ".join(part.strip() for part in str(text).splitlines() if part.strip())


def _fail(message: str) -> None:
    print(f"bayes-qse: error: {_one_line(message)}", file=sys.stderr)


def guarded(func: Callable[[], int | None], debug: bool = False) -> int:
    """Run ``func`` and turn exceptions into an exit status with one line on stderr.

    ``BayesQSEInputError`` and ``OSError`` (bad input, missing files): status 2.
    ``KeyboardInterrupt``: status 130 (rerun the same command to resume an experiment).
    A closed standard output (``bayes-qse games | head -1``): status 141 (128 + SIGPIPE),
    quietly, as a command killed by SIGPIPE.
    Anything else: status 1, or the traceback when ``debug``.
    """
    try:
        code = int(func() or 0)
        sys.stdout.flush()  # a closed pipe shows up here, not at interpreter exit
        return code
    except BrokenPipeError:
        _silence_stdout()
        return EXIT_BROKEN_PIPE
    except BayesQSEInputError as exc:
        _fail(str(exc))
        return EXIT_BAD_INPUT
    except OSError as exc:
        name = exc.filename if exc.filename not in (None, "", ".") else None
        _fail(f"{exc.strerror or exc}: {name}" if name else str(exc.strerror or exc))
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:
        _fail("interrupted; finished work is saved, rerun the same command to resume")
        return EXIT_INTERRUPTED
    except Exception as exc:
        if debug:
            raise
        _fail(f"internal error {type(exc).__name__}: {exc} (rerun with --debug for details)")
        return EXIT_INTERNAL


def _one_line_warning(message, category, filename, lineno, line=None) -> str:
    return f"bayes-qse: warning: {_one_line(str(message))}\n"


def integer_arg(low: int, high: int | None = None) -> Callable[[str], int]:
    """An argparse ``type``: an integer in ``[low, high]``, written plainly or in integral
    scientific notation (``1e6``); anything else is a one-line usage error naming the flag."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            try:
                number = float(text)
            except ValueError:
                raise argparse.ArgumentTypeError(f"invalid int value: {text!r}") from None
            if not number.is_integer():
                raise argparse.ArgumentTypeError(f"invalid int value: {text!r}") from None
            value = int(number)
        if value < low or (high is not None and value > high):
            bound = f">= {low}" if high is None else f"in [{low}, {high}]"
            raise argparse.ArgumentTypeError(f"must be {bound}, got {text}")
        return value

    parse.__name__ = "int"
    return parse


def seed_arg(text: str) -> int:
    """An argparse ``type``: a seed in ``[0, 2**32 - 1]``."""
    return integer_arg(0, SEED_MAX)(text)


seed_arg.__name__ = "int"


def path_arg(text: str) -> str:
    """An argparse ``type``: a non-empty file name (``''`` would otherwise mean ``.``)."""
    if not text.strip():
        raise argparse.ArgumentTypeError("empty file name")
    return text


path_arg.__name__ = "path"


class OneLineArgumentParser(argparse.ArgumentParser):
    """An ``ArgumentParser`` whose usage errors are one line on stderr and exit status 2."""

    def error(self, message: str) -> NoReturn:
        _fail(f"{self.prog}: {message} (see --help)")
        sys.exit(EXIT_BAD_INPUT)


__all__ = [
    "EXIT_BAD_INPUT",
    "EXIT_BROKEN_PIPE",
    "EXIT_INTERNAL",
    "EXIT_INTERRUPTED",
    "EXIT_OK",
    "OneLineArgumentParser",
    "guarded",
    "integer_arg",
    "path_arg",
    "seed_arg",
]
