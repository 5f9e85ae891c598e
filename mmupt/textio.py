"""Reading users' text files: one actionable line for the two ways they break a reader.

A file saved as UTF-16 or Latin-1 raises ``UnicodeDecodeError`` deep in a reader, and JSON nested
tens of thousands deep raises ``RecursionError``; both used to surface as tracebacks. Here they
become ``InputDataError`` (or the caller's error type) naming the file and the byte offset.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from mmupt.errors import InputDataError, MmuptError


def read_text(path: str | Path, error: type[MmuptError] = InputDataError) -> str:
    """The file's text as UTF-8 (a byte-order mark is accepted); ``error`` names the bad byte."""
    data = Path(path).read_bytes()
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        hint = " (it looks like UTF-16)" if data[:2] in (b"\xff\xfe", b"\xfe\xff") else ""
        raise error(
            f"{path}: not UTF-8 text{hint}: byte offset {err.start} ({err.reason}); re-save the file as UTF-8"
        ) from None


def json_loads(text: str, where: str) -> Any:
    """``json.loads``, with nesting too deep to parse reported as bad input (decode errors pass through)."""
    try:
        return json.loads(text)
    except RecursionError:
        raise InputDataError(f"{where}: JSON nested too deeply to read; flatten the record") from None
