"""Read saved model responses (JSONL, JSON or Parquet with ``id`` and ``response``) for re-scoring."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq

from mmupt.errors import InputDataError
from mmupt.textio import json_loads, read_text


@dataclass
class ResponseSet:
    responses: dict[str, str]
    duplicate_ids: list[str] = field(default_factory=list)
    bad_rows: list[str] = field(default_factory=list)  # "<where>: <why>" for rows without id/response


def _add(out: ResponseSet, row: dict[str, Any], where: str) -> None:
    if not isinstance(row, dict) or row.get("id") is None:
        out.bad_rows.append(f"{where}: no 'id'")
        return
    key = str(row["id"])
    if "response" not in row:
        out.bad_rows.append(f"{where}: no 'response'")
        return
    if key in out.responses:
        out.duplicate_ids.append(key)
        return
    value = row["response"]
    out.responses[key] = "" if value is None else str(value)


def read_responses(path: str | Path) -> ResponseSet:
    """All responses by id. The first of duplicated ids is kept; a null response reads as ""."""
    path = Path(path)
    if not path.is_file():
        raise InputDataError(f"{path}: responses file not found")
    out = ResponseSet({})
    if path.suffix == ".parquet":
        try:
            table = pq.read_table(path)
        except Exception as err:  # noqa: BLE001 - pyarrow raises several types for a bad file
            raise InputDataError(f"{path}: not a readable Parquet file ({err})") from None
        missing = {"id", "response"} - set(table.column_names)
        if missing:
            raise InputDataError(f"{path}: missing column(s) {sorted(missing)}; found {table.column_names}")
        for index, row in enumerate(table.select(["id", "response"]).to_pylist()):
            _add(out, row, f"row {index}")
        return out
    text = read_text(path)
    stripped = text.lstrip()
    if stripped.startswith("["):
        try:
            rows = json_loads(text, str(path))
        except json.JSONDecodeError as err:
            raise InputDataError(f"{path}: line {err.lineno}: not valid JSON ({err.msg})") from None
        for index, row in enumerate(rows):
            _add(out, row, f"item {index}")
        return out
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            row = json_loads(line, f"{path}: line {number}")
        except json.JSONDecodeError as err:
            raise InputDataError(
                f"{path}: line {number}: not valid JSON ({err.msg}); expected JSON Lines"
            ) from None
        _add(out, row, f"line {number}")
    if not out.responses and not out.bad_rows:
        raise InputDataError(f"{path}: no responses found (expected JSON Lines with 'id' and 'response')")
    return out
