"""One campaign per directory at a time, and only directories this version can continue."""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import IO

import mmupt
from mmupt.errors import MmuptError
from mmupt.store import MANIFEST_VERSION, write_text_atomic
from schemas.campaign import CampaignConfig
from schemas.layout import STAMP_FILE

LOCK_FILE = ".campaign.lock"


def check_compatible(out_dir: Path, config: CampaignConfig) -> None:
    """Refuse a campaign directory written by an incompatible mmupt, or by another campaign."""
    stamp = out_dir / STAMP_FILE
    if not stamp.is_file():
        write_text_atomic(
            stamp,
            json.dumps(
                {
                    "name": config.name,
                    "mmupt_version": mmupt.__version__,
                    "manifest_version": MANIFEST_VERSION,
                },
                indent=2,
            ),
        )
        return
    data = json.loads(stamp.read_text(encoding="utf-8"))
    if data.get("manifest_version") != MANIFEST_VERSION:
        raise MmuptError(
            f"{out_dir}: written by mmupt {data.get('mmupt_version')} (artifact format "
            f"{data.get('manifest_version')}), this is {mmupt.__version__} (format {MANIFEST_VERSION}); "
            "start a new campaign directory"
        )
    if data.get("name") != config.name:
        raise MmuptError(
            f"{out_dir}: holds campaign {data.get('name')!r}, not {config.name!r}; use another --out"
        )


def lock_or_refuse(handle: IO[str], out_dir: Path) -> None:
    """Take the exclusive lock on an open lock file, or refuse with the holder's pid in one line."""
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.seek(0)
        holder = handle.read().strip() or "another process"
        raise MmuptError(
            f"{out_dir}: a campaign is already running there ({holder}); wait for it or use another --out"
        ) from None


@contextlib.contextmanager
def campaign_lock(out_dir: Path, config: CampaignConfig) -> Iterator[None]:
    """Hold an exclusive lock on ``out_dir`` for the whole campaign; a second one is refused at once."""
    out_dir.mkdir(parents=True, exist_ok=True)
    handle = (out_dir / LOCK_FILE).open("a+")
    try:
        lock_or_refuse(handle, out_dir)
    except MmuptError:
        handle.close()
        raise
    try:
        handle.seek(0)
        handle.truncate()
        handle.write(f"pid {os.getpid()}")
        handle.flush()
        check_compatible(out_dir, config)
        yield
    finally:
        fcntl.flock(handle, fcntl.LOCK_UN)
        handle.close()
