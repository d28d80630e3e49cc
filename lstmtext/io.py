"""File helpers: strict text reading and atomic writing.

Reading decodes line by line so that an invalid byte is reported with its file,
line and byte offset; a UTF-8 byte-order mark at the start of a file (as
Windows editors write) is skipped, not read as part of the first word. Writing always goes to a temporary path beside the target
and is renamed into place only when complete, so an earlier file or bundle at
the target survives any failure.
"""

from __future__ import annotations

import codecs
import contextlib
import os
import shutil
import sys
import tempfile
from pathlib import Path
from typing import IO, Iterator

from lstmtext.errors import DataError

STDIO = "-"
UTF8_BOM = codecs.BOM_UTF8


def bom_length(first: bytes, encoding: str) -> int:
    """Bytes of a UTF-8 byte-order mark that ``first`` (a file's first bytes) starts with, read as ``encoding``.

    Only for UTF-8 (any spelling): in other encodings those bytes are text.
    """
    if not first.startswith(UTF8_BOM):
        return 0
    try:
        return len(UTF8_BOM) if codecs.lookup(encoding).name == "utf-8" else 0
    except LookupError:
        return 0


def check_readable(path: str | Path, what: str = "file") -> Path:
    """Return ``path`` as a Path after checking that it is a readable file."""
    p = Path(path)
    if not p.exists():
        raise DataError(f"{what} not found", p)
    if p.is_dir():
        raise DataError(f"expected a {what}, found a directory", p)
    if not os.access(p, os.R_OK):
        raise DataError(f"{what} is not readable", p)
    return p


def iter_lines(
    path: str | Path,
    encoding: str = "utf-8",
    stream: IO[bytes] | None = None,
) -> Iterator[tuple[int, str]]:
    """Yield ``(line_number, text)`` for each line, without the line ending.

    Args:
        path: File to read, or ``"-"`` for standard input.
        encoding: Text encoding; decoding errors raise :class:`DataError` with
            the file, line and byte offset.
        stream: Binary stream to read instead of opening ``path``.
    """
    name = "<stdin>" if str(path) == STDIO else str(path)
    if stream is None and str(path) != STDIO:
        check_readable(path)
    with contextlib.ExitStack() as stack:
        if stream is not None:
            fh = stream
        elif str(path) == STDIO:
            fh = sys.stdin.buffer
        else:
            fh = stack.enter_context(open(path, "rb"))
        offset = 0
        for number, raw in enumerate(fh, start=1):
            if number == 1 and (skip := bom_length(raw, encoding)):
                raw, offset = raw[skip:], skip
            try:
                text = raw.decode(encoding)
            except UnicodeDecodeError as exc:
                raise DataError(
                    f"invalid {encoding} byte at byte offset {offset + exc.start} "
                    f"(use --encoding to read another encoding)",
                    name,
                    number,
                ) from None
            except LookupError:
                raise DataError(f"unknown encoding '{encoding}'", name) from None
            offset += len(raw)
            yield number, text.rstrip("\r\n")


def read_lines(path: str | Path, encoding: str = "utf-8") -> list[str]:
    """Read a whole text file strictly; see :func:`iter_lines`."""
    return [text for _, text in iter_lines(path, encoding)]


def require_nonempty(path: str | Path, encoding: str = "utf-8") -> list[str]:
    """Read lines and raise if the file has no non-blank line."""
    lines = read_lines(path, encoding)
    if not any(line.strip() for line in lines):
        raise DataError("file is empty", path)
    return lines


@contextlib.contextmanager
def atomic_file(path: str | Path, mode: str = "w", encoding: str | None = "utf-8") -> Iterator[IO]:
    """Open a temporary file beside ``path``; rename it onto ``path`` on success.

    ``path == "-"`` writes to standard output directly.
    """
    if str(path) == STDIO:
        if "b" in mode:
            yield sys.stdout.buffer
        else:
            yield sys.stdout
        sys.stdout.flush()
        return
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.tmp-", dir=target.parent)
    try:
        with os.fdopen(fd, mode, encoding=None if "b" in mode else encoding) as fh:
            yield fh
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


@contextlib.contextmanager
def atomic_directory(path: str | Path) -> Iterator[Path]:
    """Yield a fresh temporary directory that replaces ``path`` on success.

    The previous directory at ``path`` (if any) is moved aside and deleted only
    after the new one is in place; on failure the temporary directory is
    removed and ``path`` is untouched.
    """
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.tmp-", dir=target.parent))
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o777 & ~umask)  # mkdtemp's 0700 would hide the result from other users
    try:
        yield tmp
        replace_directory(tmp, target)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def replace_directory(src: Path, target: Path) -> None:
    """Move directory ``src`` onto ``target``, replacing it as atomically as POSIX allows."""
    old = None
    if target.exists():
        old = target.parent / f".{target.name}.old-{os.getpid()}"
        if old.exists():
            shutil.rmtree(old)
        os.replace(target, old)
    try:
        os.replace(src, target)
    except BaseException:
        if old is not None:
            os.replace(old, target)
        raise
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def recover_directory(target: str | Path) -> Path | None:
    """Undo a :func:`replace_directory` killed between its two renames.

    If ``target`` is missing but the copy moved aside as ``.<name>.old-<pid>``
    is there, that complete previous version is renamed back. Returns the
    restored path, or ``None`` when there was nothing to recover.
    """
    target = Path(target)
    if target.exists() or not target.parent.is_dir():
        return None
    olds = sorted(target.parent.glob(f".{target.name}.old-*"), key=lambda p: p.stat().st_mtime)
    if not olds:
        return None
    try:
        os.replace(olds[-1], target)
    except OSError:
        return None  # read-only location: the caller reports the missing bundle
    return target
