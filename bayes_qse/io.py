"""Atomic file writing: write to a temporary file in the same folder, fsync, then rename.

A reader (or a run resumed after a crash) therefore sees either the old file or the new one,
never a half-written file.
"""

from __future__ import annotations

import json
import os
import tempfile
import zipfile
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np


def atomic_write(path: str | os.PathLike, write: Callable[[Path], None]) -> Path:
    """Call ``write(tmp_path)`` then atomically rename ``tmp_path`` onto ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        write(tmp_path)
        with open(tmp_path, "rb+") as fh:
            os.fsync(fh.fileno())
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp_path, 0o666 & ~umask)  # mkstemp makes 0600; give the usual permissions
        os.replace(tmp_path, path)
    except BaseException:
        tmp_path.unlink(missing_ok=True)
        raise
    return path


def atomic_write_npz(path: str | os.PathLike, arrays: Mapping[str, Any]) -> Path:
    """Atomically write ``arrays`` to an uncompressed ``.npz`` file at ``path``."""

    def _write(tmp: Path) -> None:
        with open(tmp, "wb") as fh:
            np.savez(fh, **{k: np.asarray(v) for k, v in arrays.items()})

    return atomic_write(path, _write)


def atomic_write_text(path: str | os.PathLike, text: str) -> Path:
    """Atomically write ``text`` (UTF-8) to ``path``."""
    return atomic_write(path, lambda tmp: tmp.write_text(text, encoding="utf-8"))


def atomic_write_json(path: str | os.PathLike, obj: Any) -> Path:
    """Atomically write ``obj`` as indented JSON (NumPy scalars/arrays converted)."""
    return atomic_write_text(path, json.dumps(to_jsonable(obj), indent=2, sort_keys=True) + "\n")


def to_jsonable(obj: Any) -> Any:
    """Recursively convert NumPy/JAX arrays and scalars to plain Python for ``json``."""
    if isinstance(obj, Mapping):
        return {str(k): to_jsonable(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [to_jsonable(v) for v in obj]
    if isinstance(obj, Path):
        return str(obj)
    if hasattr(obj, "__array__") and not isinstance(obj, str | bytes):
        arr = np.asarray(obj)
        return arr.item() if arr.ndim == 0 else arr.tolist()
    if isinstance(obj, np.generic):
        return obj.item()
    return obj


def read_npz(
    path: str | os.PathLike,
    fields: tuple[str, ...],
    error: type[Exception],
    optional: tuple[str, ...] = (),
) -> dict[str, np.ndarray]:
    """Load ``fields`` from an ``.npz`` archive (no pickles), turning every failure -- a
    missing file, no zip header, a truncated archive, a missing field -- into ``error``."""
    path = Path(path)
    if not path.is_file():
        raise error(f"{path}: file not found")
    with open(path, "rb") as fh:
        if fh.read(4) != b"PK\x03\x04":
            raise error(f"{path}: not a readable .npz archive (no zip header)")
    try:
        with np.load(path, allow_pickle=False) as data:
            keys = set(data.files)
            missing = [f for f in fields if f not in keys and f not in optional]
            if missing:
                raise error(
                    f"{path}: missing field(s) {', '.join(missing)} (found: {sorted(keys)})"
                )
            return {f: np.array(data[f]) for f in fields if f in keys}
    except error:
        raise
    except (OSError, ValueError, EOFError, zipfile.BadZipFile, KeyError) as exc:
        raise error(f"{path}: not a readable .npz archive ({type(exc).__name__}: {exc})") from None
