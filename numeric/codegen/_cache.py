"""On-disk cache of generated code: atomic writes, checksummed entries.

Layout: ``cache_dir()/codegen-v<CODEGEN_VERSION>/<key>.<ext>``. Text entries (generated
sources) begin with one line ``<comment> divkit-cache sha256=<hex> bytes=<n>`` giving the
checksum and length of the rest; binary entries (compiled shared objects) have a sidecar
``<file>.sha256``. An entry whose checksum or length does not match (truncated, edited,
half-written by a crashed process) is treated as missing and rebuilt.

Every write goes to a temporary file in the same directory, is flushed and fsynced, and
then renamed over the destination with :func:`os.replace` (atomic on POSIX and Windows), so
a reader sees the old entry or the new one, never a partial one.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from collections.abc import Callable
from pathlib import Path

from numeric.codegen._source import CODEGEN_VERSION

__all__ = [
    "cache_dir",
    "cache_key",
    "read_text",
    "write_text",
    "cached_text",
    "write_bytes",
    "read_bytes",
    "atomic_write",
]

_MARK = "divkit-cache"


def cache_dir() -> Path:
    """The cache directory for this codegen version (created on demand).

    ``$DIVKIT_CACHE_DIR`` if set, else ``$XDG_CACHE_HOME/divkit`` if that is set, else
    ``~/.cache/divkit``; entries go to its ``codegen-v<version>`` subdirectory. If that
    directory cannot be created (read-only home, a file in the way), a per-user directory
    under the system temporary directory is used instead.
    """
    root = os.environ.get("DIVKIT_CACHE_DIR")
    if not root:
        xdg = os.environ.get("XDG_CACHE_HOME")
        root = os.path.join(xdg, "divkit") if xdg else os.path.join("~", ".cache", "divkit")
    path = Path(root).expanduser() / f"codegen-v{CODEGEN_VERSION}"
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError:
        user = os.getuid() if hasattr(os, "getuid") else "user"
        path = Path(tempfile.gettempdir()) / f"divkit-cache-{user}" / path.name
        path.mkdir(parents=True, exist_ok=True)
    return path


def cache_key(*parts: str) -> str:
    """SHA-256 (hex, 32 characters kept) of the parts and the codegen version."""
    text = "\x1f".join((f"codegen-v{CODEGEN_VERSION}", *parts))
    return hashlib.sha256(text.encode()).hexdigest()[:32]


def atomic_write(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically (temporary file, fsync, ``os.replace``)."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise


def _digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def write_text(path: Path, text: str, *, comment: str = "#") -> None:
    """Store ``text`` with its checksum line."""
    body = text.encode()
    head = f"{comment} {_MARK} sha256={_digest(body)} bytes={len(body)}\n".encode()
    atomic_write(path, head + body)


def read_text(path: Path) -> str | None:
    """The stored text, or ``None`` if the entry is missing or fails its checksum."""
    try:
        data = Path(path).read_bytes()
    except (FileNotFoundError, IsADirectoryError, PermissionError):
        return None
    head, sep, body = data.partition(b"\n")
    if not sep:
        return None
    fields = head.decode(errors="replace").split()
    if len(fields) != 4 or fields[1] != _MARK:
        return None
    expected = {k: v for k, _, v in (f.partition("=") for f in fields[2:])}
    if expected.get("bytes") != str(len(body)) or expected.get("sha256") != _digest(body):
        return None
    return body.decode()


def cached_text(path: Path, build: Callable[[], str], *, comment: str = "#") -> str:
    """The entry at ``path``; built with ``build()`` and stored when missing or corrupt."""
    text = read_text(path)
    if text is None:
        text = build()
        try:
            write_text(path, text, comment=comment)
        except OSError:
            pass  # an unwritable cache costs a rebuild next time, nothing else
    return text


def write_bytes(path: Path, data: bytes) -> None:
    """Store binary ``data`` and its ``.sha256`` sidecar (data first, then the sidecar)."""
    path = Path(path)
    atomic_write(path, data)
    atomic_write(path.with_name(path.name + ".sha256"), _digest(data).encode())


def read_bytes(path: Path) -> bytes | None:
    """The stored bytes, or ``None`` if missing or not matching the sidecar checksum."""
    path = Path(path)
    try:
        data = path.read_bytes()
        expected = path.with_name(path.name + ".sha256").read_text().strip()
    except (FileNotFoundError, IsADirectoryError, PermissionError, UnicodeDecodeError):
        return None
    return data if _digest(data) == expected else None
