"""The artifact store: atomic Parquet artifacts with manifests, read back with validation.

An artifact is a directory of named Parquet tables (schemas in ``schemas.artifacts``) and a
``manifest.json``. Everything is written into a hidden temporary sibling directory and renamed
into place at the end, and the manifest is written last: a directory that has a manifest is a
complete artifact, and a crash at any point leaves nothing a later stage could read.

    with ArtifactWriter(out_dir, kind="ingest", config=cfg, inputs={"source": h}) as w:
        w.write("samples", batch)      # any number of batches, bounded memory
        w.write("rejects", rejects)
    table = read_table(out_dir, "samples")
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import os
import shutil
import subprocess
import time
import uuid
from collections.abc import Iterator
from contextvars import ContextVar
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
from pydantic import BaseModel

import mmupt
from mmupt.errors import ArtifactError, ConfigError, InputDataError
from schemas.artifacts import schema_for
from schemas.layout import MODEL_DIR, ROUND_INDEX_REGEX

MANIFEST = "manifest.json"
MANIFEST_VERSION = 1


def code_version() -> str:
    """Package version plus the git commit when running from a checkout."""
    version = mmupt.__version__
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            cwd=Path(__file__).resolve().parent,
            capture_output=True,
            text=True,
            timeout=5,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        commit = ""
    return f"{version}+{commit}" if commit else version


SOURCE_PACKAGES = ("mmupt", "schemas", "stages", "tasks", "flows")
"""The packages whose code decides what a stage writes (tests, docs and benchmarks do not)."""


def source_fingerprint(roots: tuple[Path, ...] | None = None) -> str:
    """sha256 over the relative path and bytes of every ``.py`` file in ``roots`` (default: the packages).

    Cache keys use this rather than ``code_version``: a git commit misses uncommitted edits (a stale
    cache hit after changing a stage) and changes on every docs-only commit (a needless re-run).
    """
    if roots is None:
        return _package_fingerprint()
    digest = hashlib.sha256()
    for root in roots:
        for path in sorted(root.rglob("*.py")):
            if "__pycache__" in path.parts:
                continue
            digest.update(f"{root.name}/{path.relative_to(root).as_posix()}\0".encode())
            digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


@functools.lru_cache(maxsize=1)
def _package_fingerprint() -> str:
    from importlib.util import find_spec

    origins = [find_spec(name) for name in SOURCE_PACKAGES]  # locates without importing
    return source_fingerprint(
        tuple(Path(spec.origin).resolve().parent for spec in origins if spec and spec.origin)
    )


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def config_hash(config: BaseModel | dict[str, Any] | None) -> str | None:
    if config is None:
        return None
    payload = config.model_dump(mode="json") if isinstance(config, BaseModel) else config
    return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()[:16]


def conform(table: pa.Table, name: str) -> pa.Table:
    """Cast ``table`` to the catalog schema of ``name`` (column order, types, nullability).

    Raises ``ArtifactError`` naming missing or unexpected columns, or columns that cannot be cast.
    """
    schema = schema_for(name)
    have = set(table.column_names)
    want = set(schema.names)
    if missing := sorted(want - have):
        raise ArtifactError(f"table {name!r}: missing column(s) {missing}; found {sorted(have)}")
    if extra := sorted(have - want):
        raise ArtifactError(
            f"table {name!r}: unexpected column(s) {extra}; the schema is in schemas/artifacts.py"
        )
    table = table.select(schema.names)
    for fld in schema:
        if not fld.nullable and table.column(fld.name).null_count:
            raise ArtifactError(f"table {name!r}: column {fld.name!r} has nulls but is required")
    try:
        return table.cast(schema)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as err:
        raise ArtifactError(f"table {name!r}: does not match its schema: {err}") from None


@dataclass
class Manifest:
    """What an artifact holds and where it came from; its presence marks the artifact complete."""

    kind: str
    tables: dict[str, dict[str, Any]]
    inputs: dict[str, str] = field(default_factory=dict)
    config_hash: str | None = None
    code_version: str = ""
    created_at: float = 0.0
    stats: dict[str, Any] = field(default_factory=dict)
    content_hash: str = ""
    version: int = MANIFEST_VERSION
    # the orchestrator's key for the work that made it (tasks/caching.py), when one was running
    producer_key: str | None = None

    def rows(self, table: str) -> int:
        return int(self.tables[table]["rows"])

    def to_json(self) -> str:
        return json.dumps(self.__dict__, indent=2, sort_keys=True, default=str)


def check_output_dir(
    out_dir: str | Path, kind: str, inputs: tuple[str | Path, ...] = (), scratch: tuple[str, ...] = ()
) -> None:
    """Refuse an output directory whose contents publishing would destroy.

    Publishing replaces ``out_dir`` whole, so it may only be: absent, empty, or an earlier
    artifact of the same stage (its manifest says ``kind``). A file, a folder of anything else,
    or a folder that holds (or is inside) one of ``inputs`` is refused with one line, before any
    work is done: mmupt never deletes a user's files. ``scratch`` names entries the stage itself
    keeps there while it runs (synthesis' resumable ``.shards``).
    """
    out = Path(out_dir)
    resolved = out.resolve()
    for source in inputs:
        src = Path(source).resolve()
        if resolved == src or src.is_relative_to(resolved) or resolved.is_relative_to(src):
            raise ConfigError(
                f"--out {out}: overlaps the input {source}; writing there would replace the input: "
                "choose an output directory outside it"
            )
    if not out.exists():
        return
    if not out.is_dir():
        raise ConfigError(f"--out {out}: is a file, not a directory; choose a new or empty directory")
    manifest = out / MANIFEST
    if manifest.is_file():
        try:
            found = json.loads(manifest.read_text(encoding="utf-8")).get("kind")
        except (OSError, ValueError, AttributeError):
            found = None
        if found == kind:
            return
        raise ConfigError(
            f"--out {out}: holds a {found or 'unreadable'} artifact, not a {kind} one; "
            "choose a new or empty directory (mmupt replaces only an earlier artifact of the same stage)"
        )
    entries = sorted(path.name for path in out.iterdir() if path.name not in scratch)
    if entries:
        shown = ", ".join(entries[:3]) + (", ..." if len(entries) > 3 else "")
        raise ConfigError(
            f"--out {out}: is not empty ({shown}) and is not an mmupt {kind} artifact; "
            "mmupt never deletes files it did not write: choose a new or empty directory"
        )


_PRODUCER_KEY: ContextVar[str | None] = ContextVar("mmupt_producer_key", default=None)


@contextlib.contextmanager
def producer_key(key: str) -> Iterator[None]:
    """Stamp every artifact written inside this block with ``key`` (``Manifest.producer_key``).

    Why: the manifest is an artifact's one atomic commit point. An orchestrator killed after the
    manifest was written but before it recorded its own cache entry would otherwise redo finished
    work; with its key inside the manifest, the re-run recognises the artifact as its own.
    """
    token = _PRODUCER_KEY.set(key)
    try:
        yield
    finally:
        _PRODUCER_KEY.reset(token)


class ArtifactWriter:
    """Context manager that streams tables into a temporary directory and publishes atomically.

    ``owned``: the stage itself has already vetted ``out_dir`` (a training run publishing over its
    own checkpoints); otherwise ``check_output_dir`` guards it.
    """

    def __init__(
        self,
        out_dir: str | Path,
        kind: str,
        *,
        config: BaseModel | dict[str, Any] | None = None,
        inputs: dict[str, str] | None = None,
        required: tuple[str, ...] = (),
        owned: bool = False,
    ) -> None:
        self.out_dir = Path(out_dir)
        if not owned:
            check_output_dir(self.out_dir, kind)
        self.kind = kind
        self.config = config
        self.inputs = dict(inputs or {})
        self.required = required  # tables written empty if the stage produced no batch for them
        self.stats: dict[str, Any] = {}
        self._tmp = self.out_dir.parent / f".{self.out_dir.name}.tmp-{uuid.uuid4().hex[:8]}"
        self._writers: dict[str, pq.ParquetWriter] = {}
        self._rows: dict[str, int] = {}
        self.manifest: Manifest | None = None

    @property
    def workdir(self) -> Path:
        """Scratch space inside the artifact (e.g. a model checkpoint), published with it."""
        return self._tmp

    def __enter__(self) -> ArtifactWriter:
        self._tmp.mkdir(parents=True, exist_ok=False)
        return self

    def write(self, name: str, batch: pa.Table | pa.RecordBatch) -> None:
        table = pa.Table.from_batches([batch]) if isinstance(batch, pa.RecordBatch) else batch
        table = conform(table, name)
        writer = self._writers.get(name)
        if writer is None:
            writer = pq.ParquetWriter(self._tmp / f"{name}.parquet", schema_for(name), compression="zstd")
            self._writers[name] = writer
            self._rows[name] = 0
        writer.write_table(table)
        self._rows[name] += table.num_rows

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is not None:
            for writer in self._writers.values():
                with contextlib.suppress(Exception):  # cleanup must not mask the original error
                    writer.close()
            shutil.rmtree(self._tmp, ignore_errors=True)
            return
        for name in self.required:
            if name not in self._writers:
                self.write(name, schema_for(name).empty_table())
        for writer in self._writers.values():
            writer.close()
        tables = {}
        content = hashlib.sha256()
        for name in sorted(self._rows):
            path = self._tmp / f"{name}.parquet"
            sha = file_sha256(path)
            content.update(f"{name}:{sha}".encode())
            tables[name] = {"file": path.name, "rows": self._rows[name], "sha256": sha}
        model = self._tmp / MODEL_DIR
        if model.is_dir():  # a checkpoint published with the artifact is part of its identity
            for path in sorted(p for p in model.rglob("*") if p.is_file()):
                content.update(f"{MODEL_DIR}/{path.relative_to(model)}:{file_sha256(path)}".encode())
        self.manifest = Manifest(
            kind=self.kind,
            tables=tables,
            inputs=self.inputs,
            config_hash=config_hash(self.config),
            code_version=code_version(),
            created_at=time.time(),
            stats=self.stats,
            content_hash=content.hexdigest(),
            producer_key=_PRODUCER_KEY.get(),
        )
        write_text_atomic(self._tmp / MANIFEST, self.manifest.to_json())
        _publish(self._tmp, self.out_dir)


def write_text_atomic(path: Path, text: str) -> None:
    """Replace ``path`` with ``text`` in one rename: a crash leaves the old file or the new, never half of one.

    Every small state file a re-run reads back (decisions, summaries, checkpoint markers) goes
    through here: a truncated JSON file would turn a resumable crash into a manual clean-up.
    """
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text, encoding="utf-8")
    with tmp.open("rb") as handle:
        os.fsync(handle.fileno())
    tmp.replace(path)


def _publish(tmp: Path, out_dir: Path) -> None:
    """Rename ``tmp`` to ``out_dir``, replacing an older artifact there without a gap of garbage."""
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    if out_dir.exists():
        trash = out_dir.parent / f".{out_dir.name}.old-{uuid.uuid4().hex[:8]}"
        out_dir.rename(trash)
        tmp.rename(out_dir)
        shutil.rmtree(trash, ignore_errors=True)
    else:
        tmp.rename(out_dir)


def flatten_stats(stats: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """``{"a": {"b": 1}} -> {"a/b": 1}``: manifest stats as metric names."""
    from schemas.base import flatten

    return flatten(stats, prefix, sep="/")


def write_artifact(
    out_dir: str | Path,
    kind: str,
    tables: dict[str, pa.Table],
    *,
    config: BaseModel | dict[str, Any] | None = None,
    inputs: dict[str, str] | None = None,
    stats: dict[str, Any] | None = None,
) -> Manifest:
    """Write whole in-memory tables as one artifact (convenience over ``ArtifactWriter``)."""
    with ArtifactWriter(out_dir, kind, config=config, inputs=inputs) as writer:
        for name, table in tables.items():
            writer.write(name, table)
        writer.stats.update(stats or {})
    assert writer.manifest is not None
    return writer.manifest


def read_manifest(artifact_dir: str | Path) -> Manifest:
    artifact_dir = Path(artifact_dir)
    path = artifact_dir / MANIFEST
    if not path.is_file():
        if artifact_dir.is_dir():
            raise ArtifactError(
                f"{artifact_dir}: no {MANIFEST}: the artifact is incomplete (re-run the stage)"
            )
        raise ArtifactError(f"{artifact_dir}: artifact not found")
    data = json.loads(path.read_text(encoding="utf-8"))
    if data.get("version") != MANIFEST_VERSION:
        raise ArtifactError(
            f"{path}: manifest version {data.get('version')} is not supported by this mmupt "
            f"(expects {MANIFEST_VERSION}); re-run the stage with this version"
        )
    return Manifest(**data)


def table_path(artifact_dir: str | Path, name: str) -> Path:
    manifest = read_manifest(artifact_dir)
    if name not in manifest.tables:
        raise ArtifactError(f"{artifact_dir}: has no table {name!r} (it has {sorted(manifest.tables)})")
    return Path(artifact_dir) / manifest.tables[name]["file"]


def read_table(artifact_dir: str | Path, name: str, columns: list[str] | None = None) -> pa.Table:
    """Read a whole table, checked against the catalog schema."""
    table = pq.read_table(table_path(artifact_dir, name), columns=columns)
    return table if columns else conform(table, name)


def read_user_parquet(path: str | Path) -> pa.Table:
    """A user's Parquet file (not an artifact), or one line saying it cannot be read."""
    try:
        return pq.read_table(path)
    except (pa.ArrowException, OSError) as err:
        raise InputDataError(f"{path}: not a readable Parquet file ({err})") from None


def iter_batches(artifact_dir: str | Path, name: str, batch_size: int = 256) -> Iterator[pa.RecordBatch]:
    """Stream a table in record batches, for inputs that must not be loaded whole."""
    # pre_buffer=False: the default read-ahead would hold the whole file in memory.
    handle = pq.ParquetFile(table_path(artifact_dir, name), pre_buffer=False)
    yield from handle.iter_batches(batch_size=batch_size)


def artifact_hash(artifact_dir: str | Path) -> str:
    """The content hash recorded in the manifest: the identity of an artifact in cache keys."""
    return read_manifest(artifact_dir).content_hash


def duckdb_views(root: str | Path, con: Any = None) -> Any:
    """A DuckDB connection with one view per table name over every artifact below ``root``.

    Each view unions all artifacts' ``<name>.parquet`` files (by column name) and adds
    ``artifact`` (the directory, relative to root) and ``round`` (from a ``round-<k>`` path part,
    else null), so "vote share by round" is one GROUP BY.
    """
    import duckdb

    root = Path(root).resolve()
    con = con or duckdb.connect()
    by_name: dict[str, list[str]] = {}
    for manifest_path in sorted(root.rglob(MANIFEST)):
        if any(part.startswith(".") for part in manifest_path.relative_to(root).parts):
            continue  # temporary or replaced artifacts
        manifest = read_manifest(manifest_path.parent)
        for name, meta in manifest.tables.items():
            by_name.setdefault(name, []).append(str(manifest_path.parent / meta["file"]))
    for name, files in by_name.items():
        listing = ", ".join("'" + f.replace("'", "''") + "'" for f in files)
        prefix = str(root).replace("'", "''")
        con.execute(
            f"""CREATE OR REPLACE VIEW {name} AS
            SELECT * EXCLUDE (filename),
                   regexp_replace(regexp_replace(filename, '^{prefix}/', ''), '/[^/]+$', '') AS artifact,
                   TRY_CAST(regexp_extract(filename, '{ROUND_INDEX_REGEX}', 1) AS INTEGER) AS round
            FROM read_parquet([{listing}], union_by_name = true, filename = true)"""
        )
    return con
