"""The parser's LALR tables, analysed once per grammar and kept in the user's cache directory.

Building the parser from ``grammar/indexdiff.lark`` takes about 40 ms, a fifth of the command line's start; loading
the analysed tables takes about 5 ms. The tables are what ``Lark.save`` writes, stored with their key (the grammar,
the parser's options, the Lark and Python versions; a file whose key differs is never used), written under a
temporary name and renamed, so a reader never sees a half-written file; they are read back as Lark's own cache and
its standalone parsers read them (``Lark._load_from_dict``), with the transformer given anew.

Lark's ``cache=True`` is not used: its file has a predictable name in the shared temporary directory, and Lark
unpickles it (another user could plant one there), and its key includes the file's name, so a file cannot be written
under one name and renamed. The tables live in a private directory (``$XDG_CACHE_HOME/indexdiff`` or
``~/.cache/indexdiff``; ``%LOCALAPPDATA%\\indexdiff`` on Windows), and a file is read only if it is a regular file
that only its owner, this user, can write. Without such a directory (none can be made, or it is shared), or if a
file cannot be read back, the parser is built as before; nothing fails.
"""

from __future__ import annotations

import os
import pickle
import stat
import sys
import zlib
from pathlib import Path
from typing import Any

import lark

__all__ = ["cached_lark", "cache_directory", "grammar_text"]

#: Options given when the tables are loaded, not stored with them (a transformer is an object with state).
_GIVEN = frozenset({"transformer"})


def grammar_text(filename: str) -> str:
    """A grammar of ``grammar/``: inside the installed package, or beside it in a source checkout."""
    from importlib import resources

    packaged = resources.files("indexdiff").joinpath("grammar").joinpath(filename)
    if packaged.is_file():
        return packaged.read_text(encoding="utf-8")
    return (Path(__file__).resolve().parent.parent / "grammar" / filename).read_text(encoding="utf-8")


def cache_directory() -> Path | None:
    """The private directory for the tables (made if missing), or None where there is none."""
    if sys.platform == "win32":
        base = os.environ.get("LOCALAPPDATA")
        if not base:
            return None
        root = Path(base)
    else:
        root = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    directory = root / "indexdiff"
    try:
        directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    except (OSError, RuntimeError):  # RuntimeError: no home directory
        return None
    return directory if _private(directory, stat.S_ISDIR) else None


def _private(path: Path, kind: Any) -> bool:
    """``path`` is of ``kind`` (not a symbolic link), and only this user can write it."""
    try:
        info = path.lstat()
    except OSError:
        return False
    if not kind(info.st_mode):
        return False
    if sys.platform == "win32":
        return True
    return info.st_uid == os.getuid() and not info.st_mode & (stat.S_IWGRP | stat.S_IWOTH)


def cached_lark(grammar: str, **options: Any) -> lark.Lark:
    """``Lark(grammar, parser="lalr", **options)``, its tables loaded from the cache directory when there."""
    directory = cache_directory()
    if directory is None:
        return lark.Lark(grammar, parser="lalr", **options)
    stored = {k: v for k, v in sorted(options.items()) if k not in _GIVEN}
    key = f"{grammar}\0{stored}\0lark {lark.__version__}\0python {sys.version_info[:2]}"
    # The file holds its key, compared in full: a name shared by another grammar (a checksum's collision) only
    # means building again. (No hashlib: importing it costs more than the tables save at start-up.)
    path = directory / f"parser-{zlib.crc32(key.encode()):08x}.pickle"
    if _private(path, stat.S_ISREG):
        try:
            with open(path, "rb") as fh:
                if pickle.load(fh) == key:
                    saved = pickle.load(fh)
                    given = {k: v for k, v in options.items() if k in _GIVEN}
                    return lark.Lark._load_from_dict(saved["data"], saved["memo"], **given)
        except Exception:  # noqa: BLE001  (damaged, or unreadable by this Lark: built and written again)
            pass
    parser = lark.Lark(grammar, parser="lalr", **options)
    _keep(parser, key, path)
    return parser


def _keep(parser: lark.Lark, key: str, path: Path) -> None:
    """Write the key, then the tables of ``parser``, to ``path``: under a temporary name (mode 0600), then renamed."""
    import tempfile

    try:
        handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=".parser-", suffix=".tmp")
    except OSError:  # a read-only directory: the parser is built, only not kept
        return
    try:
        with os.fdopen(handle, "wb") as fh:
            pickle.dump(key, fh, protocol=pickle.HIGHEST_PROTOCOL)
            parser.save(fh, exclude_options=_GIVEN)
        os.replace(temporary, path)
    except OSError:  # a full or read-only disk: the parser is built, only not kept
        if os.path.lexists(temporary):
            os.unlink(temporary)
