"""The output directory's lock, and the notices a run directory gives.

One writer at a time: a :class:`~.store.RunStore` holds the directory's lock
(:class:`OutputLock`, an exclusive ``flock`` on ``<out_dir>/.lock``, which records the
holder's pid, host and start time) until it is closed.  A second writer gets a
:class:`ConfigError` naming the holder.  The operating system releases the lock of a process
that dies, so a lock left by a killed run is taken over, with a :class:`RunNotice` naming it.
Locks of the same directory in the *same* process share one ``flock`` (re-entrant).
"""

from __future__ import annotations

import datetime as _dt
import errno
import json
import os
import socket
import threading
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ..errors import ConfigError

#: The lock file of an output directory.
LOCK = ".lock"


def now_iso() -> str:
    """The current UTC time, ISO 8601 to the second (the times a run directory records)."""
    return _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds")


class RunNotice(UserWarning):
    """A one-line notice about a run directory (a checkpoint set aside, a stale lock taken
    over): nothing is wrong with the results, but the user should know."""


def _pid_alive(pid: Any) -> bool:
    """Whether a process ``pid`` exists on this host (``False`` for a malformed pid)."""
    if isinstance(pid, bool) or not isinstance(pid, int) or pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    except (OverflowError, ValueError, OSError):
        return False
    return True


def _describe_holder(holder: Mapping[str, Any] | None) -> str:
    if not holder:
        return "holder not recorded yet"
    parts = [f"pid {holder.get('pid', '?')} on host {holder.get('host', '?')}"]
    if holder.get("started"):
        parts.append(f"started {holder['started']}")
    if holder.get("experiment"):
        parts.append(f"experiment {holder['experiment']}")
    return ", ".join(parts)


try:  # POSIX
    import fcntl as _fcntl
except ImportError:  # pragma: no cover - Windows
    _fcntl = None  # type: ignore[assignment]


def _try_flock(fd: int) -> bool | None:
    """Try an exclusive non-blocking ``flock``: ``True`` acquired, ``False`` held by another
    open file, ``None`` where the platform or file system has no ``flock``."""
    if _fcntl is None:  # pragma: no cover - Windows
        return None
    try:
        _fcntl.flock(fd, _fcntl.LOCK_EX | _fcntl.LOCK_NB)
    except OSError as exc:
        if exc.errno in (errno.EAGAIN, errno.EACCES, errno.EWOULDBLOCK):
            return False
        return None  # ENOLCK, EOPNOTSUPP, ...: fall back to the recorded pid
    return True


class OutputLock:
    """An exclusive claim on an output directory: the file ``<out_dir>/.lock``.

    :meth:`acquire` takes an exclusive ``flock`` on the file and writes the holder (pid, host,
    start time, experiment) into it; :meth:`release` empties it and unlocks.  The operating
    system drops the ``flock`` of a process that dies, so a lock whose file still names a
    holder but is not locked was left by a killed run: it is taken over with a
    :class:`RunNotice`.  Where ``flock`` is unavailable the recorded pid decides: a holder
    that is alive on this host (or that runs on another host) keeps the lock, a dead one is
    taken over.

    Within one process the lock is re-entrant: every :class:`OutputLock` of the same directory
    shares one ``flock``, released when the last of them is released.

    Raises (from :meth:`acquire`):
        ConfigError: another process holds the lock (the message names it), or ``out_dir``
            exists and is not a directory.
    """

    _held: dict[str, list[Any]] = {}  # real path -> [fd, count]
    _guard = threading.Lock()

    def __init__(self, out_dir: str | os.PathLike, experiment: str = "") -> None:
        self.out_dir = Path(out_dir)
        self.path = self.out_dir / LOCK
        self.experiment = str(experiment)
        self._mine = False

    @property
    def held(self) -> bool:
        """Whether this object holds (its share of) the lock."""
        return self._mine

    def _holder(self) -> dict[str, Any]:
        return {
            "pid": os.getpid(),
            "host": socket.gethostname(),
            "started": now_iso(),
            "experiment": self.experiment,
        }

    @staticmethod
    def _read(fd: int) -> dict[str, Any] | None:
        os.lseek(fd, 0, os.SEEK_SET)
        raw = b""
        while chunk := os.read(fd, 65536):
            raw += chunk
        if not raw.strip():
            return None
        try:
            holder = json.loads(raw.decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError):
            return {"pid": "?", "host": "?", "started": "unreadable lock file"}
        return holder if isinstance(holder, dict) else None

    def acquire(self) -> OutputLock:
        """Take the lock (see the class docstring); returns ``self``."""
        if self._mine:
            return self
        if self.out_dir.exists() and not self.out_dir.is_dir():
            raise ConfigError(f"out: {self.out_dir} exists and is not a directory")
        self.out_dir.mkdir(parents=True, exist_ok=True)
        key = os.path.realpath(self.out_dir)
        with self._guard:
            entry = self._held.get(key)
            if entry is not None:
                entry[1] += 1
                self._mine = True
                return self
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o666)
            try:
                got = _try_flock(fd)
                previous = self._read(fd)
                if got is None:  # no flock: decide on the recorded holder
                    got = not self._alive_elsewhere(previous)
                if not got:
                    raise ConfigError(
                        f"out: {self.out_dir} is in use by another run "
                        f"({_describe_holder(previous)}); wait for it to finish or choose "
                        "another --out directory"
                    )
                if previous and previous.get("pid") != os.getpid():
                    state = (
                        "no longer running"
                        if previous.get("host") == socket.gethostname()
                        and not _pid_alive(previous.get("pid"))
                        else "no longer holding it"
                    )
                    warnings.warn(
                        f"out: took over the stale lock of {self.out_dir} left by "
                        f"{_describe_holder(previous)} ({state})",
                        RunNotice,
                        stacklevel=3,
                    )
                data = json.dumps(self._holder(), sort_keys=True).encode("utf-8")
                os.ftruncate(fd, 0)
                os.lseek(fd, 0, os.SEEK_SET)
                os.write(fd, data)
                os.fsync(fd)
            except BaseException:
                os.close(fd)
                raise
            self._held[key] = [fd, 1]
            self._mine = True
        return self

    @staticmethod
    def _alive_elsewhere(holder: Mapping[str, Any] | None) -> bool:
        if not holder or holder.get("pid") == os.getpid():
            return False
        if holder.get("host") != socket.gethostname():
            return True  # cannot tell whether it is alive: assume it is
        return _pid_alive(holder.get("pid"))

    def release(self) -> None:
        """Give up this object's share of the lock (the last share empties and unlocks the
        file).  Safe to call twice."""
        if not self._mine:
            return
        key = os.path.realpath(self.out_dir)
        with self._guard:
            self._mine = False
            entry = self._held.get(key)
            if entry is None:
                return
            entry[1] -= 1
            if entry[1] > 0:
                return
            fd = entry[0]
            del self._held[key]
            try:
                os.ftruncate(fd, 0)
                if _fcntl is not None:
                    _fcntl.flock(fd, _fcntl.LOCK_UN)
            except OSError:  # pragma: no cover - the lock goes with the descriptor anyway
                pass
            finally:
                os.close(fd)

    def __enter__(self) -> OutputLock:
        return self.acquire()

    def __exit__(self, *exc: Any) -> None:
        self.release()

    def __del__(self) -> None:  # a store dropped without close() releases its share
        try:
            self.release()
        except Exception:  # pragma: no cover - interpreter shutdown
            pass


__all__ = ["LOCK", "OutputLock", "RunNotice", "now_iso"]
