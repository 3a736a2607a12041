"""A bundle's identity: one sha256 over every file in its folder.

The digest is the sha256 of a `sha256sum`-style listing (`<file sha256>  <relative path>\n`, sorted
by path), so a board can check a received bundle file by file with standard tools, and a bundle
folder on a board is named by it (`models/<digest>`).
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

from .bundle import MANIFEST, sha256_file


_HEX64 = re.compile(r"[0-9a-f]{64}")


def is_digest(text: str) -> bool:
    return bool(_HEX64.fullmatch(text))


class DigestError(ValueError):
    """A folder that cannot be a bundle; the message names the path."""


def bundle_files(folder: Path) -> list[Path]:
    """Every regular file under `folder`, sorted by relative path; links and special files refused."""
    folder = Path(folder)
    if not folder.is_dir():
        raise DigestError(f"{folder}: not a bundle folder")
    files: list[Path] = []
    for path in sorted(folder.rglob("*")):
        if path.is_symlink():
            raise DigestError(f"{path}: symbolic links are not allowed in a bundle")
        if path.is_file():
            files.append(path)
        elif not path.is_dir():
            raise DigestError(f"{path}: not a regular file")
    if not (folder / MANIFEST).is_file():
        raise DigestError(f"{folder}: no {MANIFEST} (not a bundle)")
    return sorted(files, key=lambda p: p.relative_to(folder).as_posix())


def listing(folder: Path) -> str:
    folder = Path(folder)
    return "".join(f"{sha256_file(p)}  {p.relative_to(folder).as_posix()}\n" for p in bundle_files(folder))


def bundle_digest(folder: Path) -> str:
    return hashlib.sha256(listing(folder).encode()).hexdigest()
