"""Find the files behind each source argument and the layout of each (or apply ``--layout``).

Detection rules, first match wins:
- a folder with ``manifest.json`` -> ``world`` (an artifact directory holding a ``world`` table);
- a folder with ``questions.csv`` / ``questions.jsonl`` -> ``folder`` (plain images + questions);
- ``*.parquet`` files (a folder is searched recursively, e.g. Hugging Face ``data/<split>-*.parquet``),
  decided per file from its schema: ``solution`` + ``image`` + ``problem`` -> ``geoqa_r1v``;
  ``images`` + ``problem`` -> ``mmupt_parquet``; anything else -> ``hf_parquet``, whose column
  check then says precisely what is missing;
- ``*.json`` / ``*.jsonl`` -> ``json``; a lone ``*.csv`` -> ``folder`` (its images beside it).
All detection happens before anything is written, so a bad source fails fast.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from mmupt.errors import InputDataError
from schemas.ingest import LAYOUTS, ColumnMap, IngestConfig
from stages.ingest.records import SourceFile

PARQUET_LAYOUTS = ("mmupt_parquet", "geoqa_r1v", "hf_parquet")
FOLDER_INDEXES = ("questions.csv", "questions.jsonl")
NOT_DATA_JSON = frozenset(
    {"dataset_info.json", "dataset_infos.json", "dataset_dict.json", "state.json", "manifest.json"}
)
HF_SHARD = re.compile(r"^(?P<split>[A-Za-z0-9_.]+?)-\d{5}-of-\d{5}$")


def parquet_schema(path: Path, display: str) -> pa.Schema:
    try:
        return pq.read_schema(path)
    except (OSError, pa.ArrowException, ValueError) as err:
        raise InputDataError(f"{display}: not a readable Parquet file ({err})") from None


def parquet_layout(schema: pa.Schema, mapping: ColumnMap) -> str:
    names = set(schema.names)
    problem = (mapping.problem or "problem") in names
    if problem and (mapping.solution or "solution") in names and "image" in names:
        return "geoqa_r1v"
    if problem and (mapping.images is not None or "images" in names):
        return "mmupt_parquet"
    return "hf_parquet"


def _file_layout(path: Path, config: IngestConfig) -> str:
    suffix = path.suffix.lower()
    if suffix == ".parquet":
        return parquet_layout(parquet_schema(path, str(path)), config.columns)
    if suffix in (".json", ".jsonl"):
        return "json"
    if suffix == ".csv":
        return "folder"
    raise InputDataError(
        f"{path}: cannot detect the layout of a {suffix or 'suffix-less'} file; supported: .parquet, .json, "
        f".jsonl, .csv, a dataset folder or a world artifact folder. Pass --layout to force one of: {', '.join(LAYOUTS)}"
    )


def _data_files(folder: Path, suffixes: tuple[str, ...]) -> list[Path]:
    """Data files below ``folder`` in a stable order, skipping hidden paths and HF metadata JSON."""
    return sorted(
        path
        for path in folder.rglob("*")
        if path.suffix.lower() in suffixes
        and path.name not in NOT_DATA_JSON
        and not any(part.startswith(".") for part in path.relative_to(folder).parts)
        and path.is_file()
    )


def _folder_files(folder: Path, forced: str | None, config: IngestConfig) -> list[tuple[Path, str]]:
    if forced in (None, "world") and (folder / "manifest.json").is_file():
        return [(folder, "world")]
    if forced in (None, "folder"):
        for name in FOLDER_INDEXES:
            if (folder / name).is_file():
                return [(folder / name, "folder")]
    if forced in (None, *PARQUET_LAYOUTS) and (parquet := _data_files(folder, (".parquet",))):
        return [(p, forced or parquet_layout(parquet_schema(p, str(p)), config.columns)) for p in parquet]
    if forced in (None, "json") and (documents := _data_files(folder, (".jsonl", ".json"))):
        return [(p, "json") for p in documents]
    listing = ", ".join(sorted(p.name for p in folder.iterdir())[:12]) or "(empty)"
    wanted = {
        None: "manifest.json, questions.csv/jsonl, *.parquet, *.json or *.jsonl",
        "world": "manifest.json",
        "folder": " or ".join(FOLDER_INDEXES),
        "json": "*.json or *.jsonl",
    }.get(forced, "*.parquet")
    raise InputDataError(
        f"{folder}: no data files for layout {forced or 'detection'} (looked for {wanted}); found: {listing}"
    )


def _display(path: Path, anchor: Path) -> str:
    try:
        return path.relative_to(anchor).as_posix()
    except ValueError:
        return str(path)


def plan_sources(sources: list[Path], config: IngestConfig, layout: str | None = None) -> list[SourceFile]:
    """Every file to read, with its layout and the folders its image paths may use."""
    if layout is not None and layout not in LAYOUTS:
        raise InputDataError(f"unknown layout {layout!r}; choose one of: {', '.join(LAYOUTS)}")
    if not sources:
        raise InputDataError("no source given: pass at least one file or folder to ingest")
    for source in map(Path, sources):
        if not source.exists():
            raise InputDataError(f"{source}: not found")
    # Displayed paths are relative to the arguments' common parent: independent of the working
    # directory, and still telling a/train.parquet from b/train.parquet.
    anchor = Path(os.path.commonpath([Path(source).resolve().parent for source in sources]))
    extra_root = (config.image_root.resolve(),) if config.image_root is not None else ()
    planned: list[SourceFile] = []
    for source in map(Path, sources):
        resolved = source.resolve()
        if resolved.is_dir():
            root, files = resolved, _folder_files(resolved, layout, config)
        else:
            if layout == "world":
                raise InputDataError(
                    f"{source}: the world layout reads an artifact folder (with manifest.json), not a file"
                )
            root, files = resolved.parent, [(resolved, layout or _file_layout(resolved, config))]
        for path, kind in files:
            bases = tuple(dict.fromkeys((path if path.is_dir() else path.parent, root, *extra_root)))
            shard = HF_SHARD.match(path.stem) if path.is_file() else None
            planned.append(
                SourceFile(
                    path=path,
                    display=_display(path, anchor),
                    layout=kind,
                    bases=bases,
                    roots=tuple(dict.fromkeys((root, *extra_root))),
                    split=shard["split"] if shard else None,
                )
            )
    return planned
