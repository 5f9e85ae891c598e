"""Resolve image paths written in a dataset without ever opening anything outside it.

A dataset's JSON/CSV is untrusted: ``../../etc/passwd`` or ``/home/me/.ssh/id_rsa`` as an image
path must not be read (the bytes would end up in an artifact). The check is lexical first, with
no filesystem access at all, then repeated on the symlink-resolved path (``os.path.realpath``
reads links but opens no file), so a link inside the folder that points out is refused too.
"""

from __future__ import annotations

import os
from pathlib import Path, PurePosixPath

from stages.ingest.records import RowReject


def within(path: Path, roots: tuple[Path, ...]) -> bool:
    return any(path == root or path.is_relative_to(root) for root in roots)


def resolve_image_path(raw: str, bases: tuple[Path, ...], roots: tuple[Path, ...]) -> Path:
    """The real path of an existing image file inside ``roots``, else ``RowReject``.

    Relative paths are tried against each of ``bases`` in order (annotation file's folder, dataset
    folder, configured image root): datasets disagree on what their paths are relative to.
    """
    if not raw or "\x00" in raw:
        raise RowReject("image_not_found", f"image path {raw!r} is empty or invalid")
    candidate = PurePosixPath(raw.replace("\\", "/"))
    tries = [Path(candidate)] if candidate.is_absolute() else [base / candidate for base in bases]
    inside = [p for p in (Path(os.path.normpath(t)) for t in tries) if within(p, roots)]
    if not inside:
        raise RowReject("path_escape", f"image path {raw!r} leads outside {', '.join(map(str, roots))}")
    for lexical in inside:
        real = Path(os.path.realpath(lexical))
        if not within(real, roots):
            raise RowReject("path_escape", f"image path {raw!r} is a link to {real}, outside the dataset")
        if real.is_file():
            return real
    raise RowReject("image_not_found", f"image file {raw!r} not found (tried {', '.join(map(str, inside))})")


def read_image_file(path: Path, max_bytes: int) -> bytes:
    """The bytes of a resolved image file, refusing oversized files before reading them."""
    try:
        size = path.stat().st_size
        if size > max_bytes:
            raise RowReject("image_too_large", f"{path.name}: {size} bytes > max_image_bytes {max_bytes}")
        return path.read_bytes()
    except OSError as err:
        raise RowReject("image_unreadable", f"{path.name}: {err.strerror or err}") from None
