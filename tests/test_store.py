"""Artifacts are atomic: a crash mid-write leaves nothing readable; manifests describe content."""

from __future__ import annotations

import json

import pyarrow as pa
import pytest

from mmupt.errors import ArtifactError
from mmupt.store import ArtifactWriter, artifact_hash, duckdb_views, read_manifest, read_table, write_artifact


def labels(n: int, share: float = 1.0) -> pa.Table:
    return pa.table(
        {
            "prompt_id": [f"p{i}" for i in range(n)],
            "pseudo_label": [str(i) for i in range(n)],
            "vote_share": [share] * n,
            "n_valid": [4] * n,
            "skip_reason": [None] * n,
        }
    )


def test_round_trip_with_manifest(tmp_path):
    out = tmp_path / "camp" / "round-0" / "vote"
    manifest = write_artifact(out, "vote", {"labels": labels(3)}, config={"a": 1}, inputs={"x": "h"})
    assert read_table(out, "labels").num_rows == 3
    on_disk = read_manifest(out)
    assert on_disk.content_hash == manifest.content_hash == artifact_hash(out)
    assert on_disk.tables["labels"]["rows"] == 3 and on_disk.inputs == {"x": "h"}
    assert on_disk.config_hash and on_disk.code_version


def test_crash_mid_write_leaves_nothing(tmp_path):
    out = tmp_path / "vote"
    with pytest.raises(RuntimeError), ArtifactWriter(out, "vote") as writer:
        writer.write("labels", labels(2))
        raise RuntimeError("killed")
    assert not out.exists()
    assert list(tmp_path.iterdir()) == []  # the temporary directory is gone too
    with pytest.raises(ArtifactError, match="not found"):
        read_table(out, "labels")


def test_crash_keeps_the_previous_artifact(tmp_path):
    out = tmp_path / "vote"
    write_artifact(out, "vote", {"labels": labels(2)})
    with pytest.raises(RuntimeError), ArtifactWriter(out, "vote") as writer:
        writer.write("labels", labels(5))
        raise RuntimeError("killed")
    assert read_table(out, "labels").num_rows == 2


def test_directory_without_manifest_is_incomplete(tmp_path):
    out = tmp_path / "half"
    out.mkdir()
    (out / "labels.parquet").write_bytes(b"garbage")
    with pytest.raises(ArtifactError, match="incomplete"):
        read_table(out, "labels")


def test_schema_is_enforced(tmp_path):
    with pytest.raises(ArtifactError, match="missing column"):
        write_artifact(tmp_path / "a", "vote", {"labels": labels(1).drop(["n_valid"])})
    with pytest.raises(ArtifactError, match="unexpected column"):
        write_artifact(tmp_path / "b", "vote", {"labels": labels(1).append_column("x", pa.array([1]))})
    nulls = labels(1).set_column(0, "prompt_id", pa.array([None], pa.string()))
    with pytest.raises(ArtifactError, match="has nulls"):
        write_artifact(tmp_path / "c", "vote", {"labels": nulls})
    assert not any(p.name in {"a", "b", "c"} for p in tmp_path.iterdir())


def test_streaming_writes_and_required_tables(tmp_path):
    with ArtifactWriter(tmp_path / "s", "vote", required=("rewards",)) as writer:
        for _ in range(3):
            writer.write("labels", labels(4))
    manifest = json.loads((tmp_path / "s" / "manifest.json").read_text())
    assert manifest["tables"]["labels"]["rows"] == 12 and manifest["tables"]["rewards"]["rows"] == 0


def test_duckdb_views_span_rounds(tmp_path):
    for k, share in enumerate([0.5, 0.75]):
        write_artifact(tmp_path / "camp" / f"round-{k}" / "vote", "vote", {"labels": labels(2, share)})
    con = duckdb_views(tmp_path / "camp")
    rows = con.sql("SELECT round, avg(vote_share) FROM labels GROUP BY round ORDER BY round").fetchall()
    assert rows == [(0, 0.5), (1, 0.75)]


def test_source_fingerprint_follows_code_not_docs(tmp_path):
    """The cache key's code part: any .py edit (committed or not) changes it; docs and bytecode do not."""
    from mmupt.store import source_fingerprint

    package = tmp_path / "stages"
    (package / "__pycache__").mkdir(parents=True)
    (package / "vote.py").write_text("THRESHOLD = 0.5\n")
    before = source_fingerprint((package,))
    (package / "NOTES.md").write_text("docs change")
    (package / "__pycache__" / "vote.cpython-311.pyc").write_bytes(b"\0bytecode")
    assert source_fingerprint((package,)) == before
    (package / "vote.py").write_text("THRESHOLD = 0.6\n")
    assert source_fingerprint((package,)) != before
    (package / "vote.py").write_text("THRESHOLD = 0.5\n")
    assert source_fingerprint((package,)) == before
    (package / "vote.py").rename(package / "voting.py")  # a moved module is different code
    assert source_fingerprint((package,)) != before
    assert len(source_fingerprint()) == 16  # the installed packages themselves
