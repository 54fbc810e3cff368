"""Atomic file writing: write to a temporary file in the same folder, fsync, then rename.

A reader (or a run resumed after a crash) therefore sees either the old file or the new one,
never a half-written file.

What is at the output path decides what happens:

- nothing, or a regular file: it is (atomically) created or replaced;
- a symbolic link: the write goes *through* the link -- its final target is replaced
  atomically (a temporary file in the target's folder) and the link is kept;
- anything else (a directory, a FIFO, a device such as ``/dev/full``, a socket), directly or
  as a link's target: :class:`~bayes_qse.errors.BayesQSEInputError`, nothing is touched.

Reading (:func:`read_npz`, :func:`check_npz`) looks at the ``.npy`` headers first and refuses
an archive whose arrays would need more memory than :func:`~bayes_qse._validate.memory_limit`
before allocating anything.
"""

from __future__ import annotations

import json
import os
import stat
import tempfile
import zipfile
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from ._validate import check_memory
from .errors import BayesQSEInputError


def _file_kind(mode: int) -> str:
    for test, name in (
        (stat.S_ISDIR, "a directory"),
        (stat.S_ISFIFO, "a FIFO (named pipe)"),
        (stat.S_ISCHR, "a character device"),
        (stat.S_ISBLK, "a block device"),
        (stat.S_ISSOCK, "a socket"),
    ):
        if test(mode):
            return name
    return "not a regular file"


def write_target(path: str | os.PathLike) -> Path:
    """The file a write to ``path`` replaces: ``path`` itself, or the final target of the
    symbolic link(s) at ``path``.

    Raises:
        BayesQSEInputError: that file exists and is not a regular file (a directory, FIFO,
            device, socket), or the links form a loop.
    """
    path = Path(path)
    target = Path(os.path.realpath(path)) if path.is_symlink() else path
    try:
        mode = os.stat(target).st_mode
    except FileNotFoundError:
        return target
    except OSError as exc:  # ELOOP and the like
        raise BayesQSEInputError(f"{path}: cannot write there ({exc.strerror})") from None
    if not stat.S_ISREG(mode):
        via = f" (the target of the link {path})" if target != path else ""
        raise BayesQSEInputError(
            f"{target}{via}: is {_file_kind(mode)}, not a regular file; refusing to replace it"
        )
    return target


def check_not_input(flag: str, out: str | os.PathLike, inputs: Mapping[str, Any]) -> None:
    """Refuse an output path ``out`` (named ``flag``) that is one of the ``inputs`` (a mapping
    flag -> path; ``None`` paths ignored), directly or through links: writing there would
    destroy the input the output is computed from.

    Raises:
        BayesQSEInputError: naming both flags and the path.
    """
    target = os.path.realpath(out)
    for name, path in inputs.items():
        if path is None:
            continue
        same = os.path.realpath(path) == target
        if not same:
            try:
                same = os.path.samefile(path, out)  # hard links
            except OSError:
                same = False
        if same:
            raise BayesQSEInputError(
                f"{flag}: {out} is the {name} input; refusing to write over it (choose "
                "another output path)"
            )


def atomic_write(path: str | os.PathLike, write: Callable[[Path], None]) -> Path:
    """Call ``write(tmp_path)`` then atomically rename ``tmp_path`` onto ``path`` (onto its
    final target when ``path`` is a symbolic link; see the module docstring).

    Returns ``path`` as given.  Raises :class:`~bayes_qse.errors.BayesQSEInputError` for a
    non-regular file at ``path``, and ``OSError`` naming the *folder* (not the temporary
    file) when the folder cannot be written.
    """
    path = Path(path)
    target = write_target(path)
    folder = target.parent
    try:
        folder.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=folder)
    except OSError as exc:
        raise OSError(exc.errno, f"cannot write {path} ({exc.strerror})", str(folder)) from None
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        try:
            write(tmp_path)
        except OSError as exc:
            if exc.filename is None or Path(exc.filename) == tmp_path:
                raise OSError(
                    exc.errno, f"cannot write {path} ({exc.strerror})", str(folder)
                ) from None
            raise
        with open(tmp_path, "rb+") as fh:
            os.fsync(fh.fileno())
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp_path, 0o666 & ~umask)  # mkstemp makes 0600; give the usual permissions
        os.replace(tmp_path, target)
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


def atomic_write_netcdf(path: str | os.PathLike, dataset: Any) -> Path:
    """Atomically write an ``xarray`` Dataset or DataTree to ``path`` (netCDF-4, h5netcdf)."""
    return atomic_write(path, lambda tmp: dataset.to_netcdf(tmp, engine="h5netcdf"))


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
    check_npz(path, error, fields=tuple(f for f in fields))
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


def npz_headers(path: str | os.PathLike) -> dict[str, tuple[tuple[int, ...], np.dtype]]:
    """``{name: (shape, dtype)}`` of every ``.npy`` member of an ``.npz``, read from the
    headers only (no array data is read).

    Raises ``zipfile.BadZipFile``, ``ValueError`` or ``OSError`` on a malformed archive.
    """
    out = {}
    with zipfile.ZipFile(path) as zf:
        for info in zf.infolist():
            if not info.filename.endswith(".npy"):
                continue
            with zf.open(info) as fh:
                version = np.lib.format.read_magic(fh)
                if version == (1, 0):
                    shape, _, dtype = np.lib.format.read_array_header_1_0(fh)
                elif version == (2, 0):
                    shape, _, dtype = np.lib.format.read_array_header_2_0(fh)
                else:
                    raise ValueError(f"unsupported .npy version {version} in {info.filename}")
            out[info.filename[: -len(".npy")]] = (tuple(int(n) for n in shape), dtype)
    return out


def check_npz(
    path: str | os.PathLike,
    error: type[Exception],
    fields: tuple[str, ...] | None = None,
) -> None:
    """Raise ``error`` unless ``path`` is a readable ``.npz`` whose arrays (``fields`` only,
    when given) fit in :func:`~bayes_qse._validate.memory_limit`; reads headers only.

    The message names the path, and for a too-large array the field, its shape and the
    memory estimate.
    """
    path = Path(path)
    try:
        headers = npz_headers(path)
    except FileNotFoundError:
        raise error(f"{path}: file not found") from None
    except (OSError, ValueError, EOFError, zipfile.BadZipFile, KeyError) as exc:
        raise error(f"{path}: not a readable .npz archive ({type(exc).__name__}: {exc})") from None
    wanted = {k: v for k, v in headers.items() if fields is None or k in fields}
    sizes = {
        k: float(np.prod(shape, dtype=np.float64)) * dt.itemsize
        for k, (shape, dt) in wanted.items()
    }
    if sizes:
        big = max(sizes, key=sizes.get)
        shape, dtype = wanted[big]
        check_memory(
            sum(sizes.values()),
            big,
            f"{path} (whose header gives {big} the shape {shape} of {dtype})",
            error,
        )


__all__ = [
    "atomic_write",
    "atomic_write_json",
    "atomic_write_netcdf",
    "atomic_write_npz",
    "atomic_write_text",
    "check_not_input",
    "check_npz",
    "npz_headers",
    "read_npz",
    "to_jsonable",
    "write_target",
]
