"""Ingest: every layout in, validated samples + rejects out, accounting exact, bad input refused."""

from __future__ import annotations

import io
import json
import math
import os
import sys
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from PIL import Image
from typer.testing import CliRunner

from mmupt.errors import InputDataError
from mmupt.store import read_manifest, read_table
from schemas.ingest import IngestConfig
from stages.ingest import REASONS, run_ingest
from stages.ingest.detect import plan_sources
from stages.ingest.images import target_size
from stages.ingest.readers import read_rows
from tests import ingest_fixtures as fx

QUIET = {"progress": False}


def ingest(tmp_path: Path, sources: list[Path], layout: str | None = None, **config):
    out = tmp_path / "out"
    manifest = run_ingest(sources, out, IngestConfig(**{**QUIET, **config}), layout)
    return manifest, read_table(out, "samples").to_pylist(), read_table(out, "rejects").to_pylist()


def decoded(data: bytes) -> Image.Image:
    image = Image.open(io.BytesIO(data))
    assert image.format == "PNG"
    return image


def reasons_by_row(rejects: list[dict]) -> dict[str, str]:
    return {r["row"].rsplit(":", 1)[1]: r["reason"] for r in rejects}


def by_source(stats: dict) -> dict[str, dict]:
    return {row["source"]: row for row in stats["sources"]}


def assert_accounting(stats: dict) -> None:
    assert stats["rows_read"] == stats["rows_accepted"] + stats["rows_rejected"] + stats["duplicates"]
    assert stats["rows_rejected"] == sum(stats["reject_reasons"].values())


# ---------------------------------------------------------------------------- layouts
def test_mmupt_parquet_bytes_and_structs(tmp_path: Path) -> None:
    rows = [
        {"images": [fx.png((1, 2, 3))], "problem": "<image>What is the area?", "answer": "12"},
        {"images": [fx.png((4, 5, 6)), fx.jpeg()], "problem": "Compare <image> and <image>.", "answer": None},
    ]
    plain = fx.write_mmupt_parquet(tmp_path / "a" / "train.parquet", rows)
    structs = fx.write_mmupt_parquet(
        tmp_path / "b" / "train.parquet", [{**rows[0], "problem": "Other q"}], True
    )
    assert [s.layout for s in plan_sources([plain, structs], IngestConfig())] == ["mmupt_parquet"] * 2

    manifest, samples, rejects = ingest(tmp_path, [plain, structs])

    assert rejects == [] and manifest.rows("samples") == 3
    first, second, third = samples
    assert first["problem"] == "<image>What is the area?" and first["oracle_answer"] == "12"
    assert second["oracle_answer"] is None and len(second["images"]) == 2
    assert first["source"] == "a/train.parquet" and third["source"] == "b/train.parquet"
    for sample in samples:
        assert len(sample["id"]) == 16 and int(sample["id"], 16) >= 0
        for data, w, h in zip(sample["images"], sample["image_widths"], sample["image_heights"], strict=True):
            image = decoded(data)
            assert image.mode == "RGB" and image.size == (w, h)
            assert 56 * 56 <= w * h <= 1280 * 28 * 28 and min(w, h) >= 28
    assert_accounting(manifest.stats)
    assert manifest.stats["oracle_answers"] == 2
    assert manifest.inputs.keys() == {str(plain.resolve()), str(structs.resolve())}


def test_geoqa_answer_comes_from_solution_and_never_reaches_metadata(tmp_path: Path) -> None:
    path = fx.write_geoqa_parquet(
        tmp_path / "geoqa.parquet",
        [
            (fx.png((9, 9, 9)), "Find angle ABC.", "<think>60+60</think> <answer> 120° </answer>"),
            (fx.png((8, 8, 8)), "Find BC.", "no tags here"),
        ],
    )
    manifest, samples, _ = ingest(tmp_path, [path])
    assert by_source(manifest.stats)["geoqa.parquet"]["layout"] == "geoqa_r1v"
    assert [s["oracle_answer"] for s in samples] == ["120°", None]
    assert all(s["metadata"] is None or "answer" not in s["metadata"] for s in samples)


def test_hf_parquet_folder_uses_image_struct_split_and_metadata(tmp_path: Path) -> None:
    root = fx.write_hf_mathvista(tmp_path / "MathVista", n=3)
    manifest, samples, rejects = ingest(tmp_path, [root])
    assert rejects == [] and len(samples) == 3
    assert samples[0]["source"] == "MathVista/data/testmini-00000-of-00001.parquet"
    meta = json.loads(samples[1]["metadata"])
    # the string column `image` is a path nobody ships; the decoded_image struct is the image
    assert meta["source_id"] == "2" and meta["split"] == "testmini" and meta["choices"] == ["1", "2"]
    assert meta["metadata"] == {"source": "synthetic"} and meta["image"] == "images/2.jpg"
    assert "answer" not in meta and samples[1]["oracle_answer"] == "3"

    _, kept, _ = ingest(tmp_path, [root], splits=["test"])
    assert kept == []
    again, _, _ = ingest(tmp_path, [root], read_batch_rows=2)  # reading mechanics: same cache key
    assert again.config_hash == manifest.config_hash
    assert again.content_hash == manifest.content_hash


def test_json_layouts_resolve_relative_paths(tmp_path: Path) -> None:
    vision = fx.write_mathvision(tmp_path / "mathvision")
    wemath = fx.write_wemath(tmp_path / "wemath")
    vista = fx.write_mathvista_json(tmp_path / "mathvista")

    manifest, samples, rejects = ingest(tmp_path, [vision, wemath, vista])

    assert rejects == [] and len(samples) == 3 + 2 + 2
    per_file = {}
    for sample in samples:
        per_file.setdefault(sample["source"], []).append(sample)
    assert set(per_file) == {"mathvision/testmini.jsonl", "wemath/testmini.json", "mathvista/testmini.json"}
    wemath_meta = json.loads(per_file["wemath/testmini.json"][0]["metadata"])
    assert wemath_meta["knowledge concept"] == "Length units" and wemath_meta["source_id"] == "2steps_1"
    assert wemath_meta["image_paths"] == ["2steps/image/1-1.png"]
    vista_meta = [json.loads(s["metadata"]) for s in per_file["mathvista/testmini.json"]]
    assert [m["source_id"] for m in vista_meta] == ["1", "2"]  # the mapping keys are the ids
    assert {s["oracle_answer"] for s in per_file["mathvision/testmini.jsonl"]} == {"6", "7", "8"}
    assert_accounting(manifest.stats)


def test_folder_with_questions_csv(tmp_path: Path) -> None:
    root = fx.write_folder(
        tmp_path / "photos",
        [("a.png", fx.png((1, 1, 1)), "What colour?", "black"), ("b.jpg", fx.jpeg(), "How many?", "")],
    )
    manifest, samples, _ = ingest(tmp_path, [root])
    assert by_source(manifest.stats)["photos/questions.csv"]["layout"] == "folder"
    assert [(s["problem"], s["oracle_answer"]) for s in samples] == [
        ("What colour?", "black"),
        ("How many?", None),
    ]


def test_world_artifact_with_split_selection(tmp_path: Path) -> None:
    world = fx.write_world(tmp_path / "world", {"unlabeled": 3, "probe": 2})
    manifest, samples, _ = ingest(tmp_path, [world], splits=["unlabeled"])
    assert len(samples) == 3 and manifest.stats["skipped_by_split"] == 2
    assert manifest.stats["rows_read"] == 3
    meta = json.loads(samples[0]["metadata"])
    assert meta == {"difficulty": 1, "source_id": "unlabeled-0", "split": "unlabeled", "task": "count_sides"}
    assert samples[0]["oracle_answer"] == "3" and samples[0]["source"] == "world"


def test_column_mapping_from_config(tmp_path: Path) -> None:
    table = pa.table({"images": [[fx.png()]], "question": ["How tall?"], "gt": ["4 m"]})
    path = tmp_path / "custom.parquet"
    pq.write_table(table, path)
    cfg = tmp_path / "ingest.yaml"
    cfg.write_text("columns: {problem: question, answer: gt}\nprogress: false\n")
    from schemas.base import load_config

    config = load_config(IngestConfig, cfg)
    run_ingest([path], tmp_path / "out", config)
    [sample] = read_table(tmp_path / "out", "samples").to_pylist()
    assert (sample["problem"], sample["oracle_answer"]) == ("How tall?", "4 m")
    assert sample["metadata"] is None  # gt is a label: never copied to metadata


def test_forced_layout_overrides_detection(tmp_path: Path) -> None:
    path = tmp_path / "rows.data"
    fx.write_jsonl(path, [{"question": "Q?", "image": "x.png"}])
    fx.save_image(tmp_path, "x.png", fx.png())
    with pytest.raises(InputDataError, match="rows.data: cannot detect the layout"):
        ingest(tmp_path, [path])
    _, samples, _ = ingest(tmp_path, [path], layout="json")
    assert len(samples) == 1


def test_parquet_image_paths_resolve_against_image_root_and_stay_inside(tmp_path: Path) -> None:
    pictures = tmp_path / "pictures"
    fx.save_image(pictures, "a.png", fx.png((5, 5, 5)))
    fx.save_image(tmp_path, "outside.png", fx.png((6, 6, 6)))
    rows = [
        {"images": ["a.png"], "problem": "q1"},
        {"images": ["../outside.png"], "problem": "q2"},  # inside tmp_path, but outside both roots
    ]
    table = pa.Table.from_pylist(
        rows, schema=pa.schema([("images", pa.list_(pa.string())), ("problem", pa.string())])
    )
    (tmp_path / "ds").mkdir()
    pq.write_table(table, tmp_path / "ds" / "train.parquet")

    _, samples, rejects = ingest(tmp_path, [tmp_path / "ds"])
    assert samples == [] and [r["reason"] for r in rejects] == ["image_not_found", "path_escape"]
    _, samples, rejects = ingest(tmp_path, [tmp_path / "ds"], image_root=pictures)
    assert [s["problem"] for s in samples] == ["q1"] and [r["reason"] for r in rejects] == ["path_escape"]
    assert json.loads(samples[0]["metadata"])["image_paths"] == ["a.png"]


def test_hf_multi_image_columns_skip_null_cells(tmp_path: Path) -> None:
    struct = pa.struct([("bytes", pa.binary()), ("path", pa.string())])
    schema = pa.schema([("question", pa.string()), ("image_1", struct), ("image_2", struct)])
    rows = [
        {
            "question": "<image> and <image>?",
            "image_1": {"bytes": fx.png(), "path": "1.png"},
            "image_2": {"bytes": fx.jpeg(), "path": None},
        },
        {"question": "<image> only", "image_1": {"bytes": fx.png((1, 1, 1)), "path": None}, "image_2": None},
    ]
    pq.write_table(pa.Table.from_pylist(rows, schema=schema), tmp_path / "mmmu.parquet")
    manifest, samples, rejects = ingest(tmp_path, [tmp_path / "mmmu.parquet"])
    assert by_source(manifest.stats)["mmmu.parquet"]["layout"] == "hf_parquet"
    assert rejects == [] and [len(s["images"]) for s in samples] == [2, 1]


# ---------------------------------------------------------------------------- file-level errors
def assert_nothing_written(tmp_path: Path) -> None:
    assert not (tmp_path / "out").exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".out")]


@pytest.mark.parametrize(
    ("make", "layout", "message"),
    [
        (lambda d: d / "missing.parquet", None, r"missing.parquet: not found"),
        (
            lambda d: _write(d / "junk.parquet", b"PAR1 not really"),
            None,
            r"junk.parquet: not a readable Parquet file",
        ),
        (lambda d: _write(d / "notes.txt", b"hello"), None, r"notes.txt: cannot detect the layout"),
        (
            lambda d: _write(d / "a.json", b"not json at all"),
            None,
            r"a.json: not a valid JSON list or mapping of rows",
        ),
        (
            lambda d: fx.write_mmupt_parquet(d / "m.parquet", [{"images": [b"x"], "problem": "q"}]),
            "json",
            r"m.parquet",
        ),
        (
            lambda d: fx.write_mmupt_parquet(d / "m.parquet", [{"images": [b"x"], "problem": "q"}]),
            "world",
            r"artifact folder",
        ),
        (lambda d: d, "world", r"no data files for layout world \(looked for manifest.json\)"),
        (
            lambda d: _write(d / "e.json", b'[{"question": "q", "image": "a.png"}, oops]'),
            None,
            r"e.json: .*element 1",
        ),
        (
            lambda d: _write(d / "list.json", b'[["a"], ["b"]]'),
            None,
            r"list.json: the first row is a JSON list",
        ),
        (lambda d: _write(d / "questions.csv", b""), None, r"questions.csv: empty CSV"),
    ],
    ids=[
        "missing",
        "not-parquet",
        "unknown-suffix",
        "not-json",
        "forced-json",
        "forced-world",
        "no-manifest",
        "broken-json-document",
        "rows-not-objects",
        "empty-csv",
    ],
)
def test_file_level_problems_stop_with_the_file_named(tmp_path: Path, make, layout, message) -> None:
    data = tmp_path / "data"
    data.mkdir()
    source = make(data)
    with pytest.raises(InputDataError, match=message):
        run_ingest([source], tmp_path / "out", IngestConfig(**QUIET), layout)
    assert_nothing_written(tmp_path)


def _write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


def test_missing_column_lists_what_was_looked_for_and_found(tmp_path: Path) -> None:
    image = {"bytes": fx.png(), "path": None}
    pq.write_table(pa.table({"img": [image], "text": ["q"]}), tmp_path / "data.parquet")
    with pytest.raises(InputDataError) as err:
        ingest(tmp_path, [tmp_path / "data.parquet"])
    assert str(err.value).startswith(
        "data.parquet: no question column (looked for problem, question, query); found: img, text"
    )
    fx.write_jsonl(tmp_path / "rows.jsonl", [{"question": "q?", "picture": "a.png"}])
    with pytest.raises(
        InputDataError,
        match=r"rows.jsonl: no image column \(looked for images, image, .*found: question, picture",
    ):
        ingest(tmp_path, [tmp_path / "rows.jsonl"])
    with pytest.raises(InputDataError, match=r"column 'gt' \(config columns.answer\) not found"):
        ingest(tmp_path, [tmp_path / "rows.jsonl"], columns={"answer": "gt", "images": "picture"})


def test_failure_in_a_later_source_leaves_nothing_and_keeps_the_old_artifact(tmp_path: Path) -> None:
    good = fx.write_mmupt_parquet(tmp_path / "good.parquet", [{"images": [fx.png()], "problem": "q?"}])
    ingest(tmp_path, [good])
    before = read_manifest(tmp_path / "out").content_hash
    broken = _write(tmp_path / "broken.json", b'[{"question": "q", "image": "a.png"}, {"question": ')
    with pytest.raises(InputDataError, match="broken.json"):
        ingest(tmp_path, [good, broken])
    assert read_manifest(tmp_path / "out").content_hash == before
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".out")]


def test_unknown_layout_and_no_sources(tmp_path: Path) -> None:
    with pytest.raises(InputDataError, match="unknown layout 'csv'; choose one of: mmupt_parquet"):
        ingest(tmp_path, [tmp_path], layout="csv")
    with pytest.raises(InputDataError, match="no source given"):
        ingest(tmp_path, [])


# ---------------------------------------------------------------------------- row-level corpus
@pytest.fixture
def opened_paths():
    """Every path ``open``ed while the test runs (Python audit events: builtins, io, os.open, PIL)."""
    seen: list[str] = []
    _AUDIT.append(seen)
    yield seen
    _AUDIT.remove(seen)


_AUDIT: list[list[str]] = []


def _audit(event: str, args: tuple) -> None:
    if event == "open" and _AUDIT and isinstance(args[0], str | bytes | os.PathLike):
        _AUDIT[-1].append(os.fsdecode(args[0]))


sys.addaudithook(_audit)


def bad_corpus(tmp_path: Path) -> tuple[Path, Path, dict[str, str | None]]:
    """A JSONL whose lines each exercise one row-level case.

    Returns the file, a valid image *outside* the dataset (that must never be opened), and the
    expected reject reason per ``line N`` (None: not a reject).
    """
    data = tmp_path / "ds"
    data.mkdir()
    secret = tmp_path / fx.save_image(tmp_path, "secret.png", fx.png((1, 99, 1)))
    os.symlink(secret, data / "link.png")
    images = {
        "ok.png": fx.png((50, 60, 70)),
        "ok2.png": fx.png((51, 60, 70)),
        "corrupt.png": fx.corrupt_bytes(),
        "empty.png": b"",
        "truncated.png": fx.truncated_png(),
        "crc.png": fx.bad_crc_png(),
        "bomb.png": fx.bomb_png(),  # 50000 x 50000: Pillow's own guard
        "big.png": fx.bomb_png(7000, 7000),  # 49 M pixels: over max_image_pixels, under Pillow's guard
        "long.png": fx.png(size=(2000, 8)),
    }
    for name, content in images.items():
        fx.save_image(data, name, content)
    lines: list[tuple[str | None, object]] = [
        (None, {"id": "1", "question": "Fine question?", "image": "ok.png", "answer": "7"}),
        (None, {"id": "2", "question": "  Fine   question? ", "image": "ok.png"}),  # duplicate
        (None, {"id": "1", "question": "Another question?", "image": "ok2.png"}),  # repeated source id
        ("image_decode", {"question": "q1", "image": "corrupt.png"}),
        ("image_empty", {"question": "q2", "image": "empty.png"}),
        ("image_decode", {"question": "q3", "image": "truncated.png"}),
        ("image_decode", {"question": "q3b", "image": "crc.png"}),
        ("image_too_large", {"question": "q4", "image": "bomb.png"}),
        ("image_too_large", {"question": "q5", "image": "big.png"}),
        ("image_aspect", {"question": "q6", "image": "long.png"}),
        ("text_encoding", b'{"question": "caf\xe9?", "image": "ok.png"}'),
        ("question_missing", '{"question": NaN, "image": "ok.png"}'),
        ("question_missing", {"question": None, "image": "ok.png"}),
        ("question_missing", {"image": "ok.png"}),
        ("question_empty", {"question": " \n\t ", "image": "ok.png"}),
        ("question_too_long", {"question": "x" * 501, "image": "ok.png"}),
        ("question_type", {"question": 42, "image": "ok.png"}),
        ("placeholder_mismatch", {"question": "<image> vs <image>", "image": "ok.png"}),
        ("path_escape", {"question": "q7", "image": "../secret.png"}),
        ("path_escape", {"question": "q8", "image": str(secret)}),
        ("path_escape", {"question": "q9", "image": "link.png"}),
        ("image_not_found", {"question": "q10", "image": "nope.png"}),
        ("image_missing", {"question": "q11"}),
        ("too_many_images", {"question": "q12", "images": ["ok.png"] * 3}),
        ("row_parse", "{not json"),
        ("row_parse", "[1, 2]"),
    ]
    path = fx.write_jsonl(data / "rows.jsonl", [row for _, row in lines])
    return path, secret, {f"line {n}": reason for n, (reason, _) in enumerate(lines, 1)}


def test_bad_rows_are_rejected_with_reasons_and_the_run_continues(tmp_path: Path, opened_paths) -> None:
    path, secret, expected = bad_corpus(tmp_path)
    opened_paths.clear()  # only what ingest opens
    manifest, samples, rejects = ingest(tmp_path, [path], max_question_chars=500, max_images=2)

    assert reasons_by_row(rejects) == {line: reason for line, reason in expected.items() if reason}
    assert all(r["reason"] in REASONS and r["detail"] for r in rejects)
    assert [s["problem"] for s in samples] == ["Fine question?", "Another question?"]
    stats = manifest.stats
    assert (stats["rows_read"], stats["rows_accepted"], stats["duplicates"]) == (len(expected), 2, 1)
    assert stats["rows_rejected"] == len(expected) - 3 and stats["repeated_source_ids"] == 1
    assert json.loads(samples[1]["metadata"])["source_id_repeated"] is True
    assert_accounting(stats)
    # the outside file was never opened, neither directly nor through the symlink
    assert not [p for p in opened_paths if Path(p).name in ("secret.png", "link.png")]
    assert any(Path(p).name == "ok.png" for p in opened_paths)  # the hook does see opens
    detail = {r["row"].rsplit(":", 1)[1]: r["detail"] for r in rejects}
    assert "byte 0xe9 at character 3" in detail["line 11"]
    assert "2500000000 pixels" in detail["line 8"]  # Pillow's DecompressionBombError, from the header
    assert "7000x7000" in detail["line 9"] and "max_image_pixels" in detail["line 9"]
    assert "../secret.png" in detail["line 19"] and "is a link to" in detail["line 21"]


def test_reject_rows_name_their_position_and_source(tmp_path: Path) -> None:
    path = fx.write_mmupt_parquet(
        tmp_path / "p.parquet",
        [
            {"images": [fx.png()], "problem": "ok?"},
            {"images": [fx.png((3, 3, 3)), b""], "problem": "two images"},
            {"images": [], "problem": "none"},
        ],
    )
    _, _, rejects = ingest(tmp_path, [path])
    assert [(r["row"], r["source"], r["reason"]) for r in rejects] == [
        ("p.parquet:1", "p.parquet", "image_empty"),
        ("p.parquet:2", "p.parquet", "image_missing"),
    ]
    assert rejects[0]["detail"].startswith("image 1: ")


def test_duplicates_across_sources_are_counted_not_rejected(tmp_path: Path) -> None:
    rows = [{"images": [fx.png((i, 0, 0))], "problem": f"q{i}"} for i in range(4)]
    a = fx.write_mmupt_parquet(tmp_path / "a.parquet", rows)
    b = fx.write_mmupt_parquet(
        tmp_path / "b.parquet", rows[2:] + [{"images": [fx.png((9, 9, 9))], "problem": "new"}]
    )
    manifest, samples, rejects = ingest(tmp_path, [a, b])
    assert (len(samples), len(rejects), manifest.stats["duplicates"]) == (5, 0, 2)
    assert by_source(manifest.stats)["b.parquet"] == {
        "source": "b.parquet",
        "layout": "mmupt_parquet",
        "read": 3,
        "accepted": 1,
        "rejected": 0,
        "duplicates": 2,
        "skipped_by_split": 0,
    }
    assert len({s["id"] for s in samples}) == 5
    assert_accounting(manifest.stats)


def test_ids_are_stable_content_hashes(tmp_path: Path) -> None:
    rows = [{"images": [fx.png()], "problem": "Same?"}]
    first = fx.write_mmupt_parquet(tmp_path / "x" / "one.parquet", rows)
    second = fx.write_mmupt_parquet(
        tmp_path / "y" / "two.parquet", [{"images": [fx.png()], "problem": " Same?\r\n"}]
    )
    _, one, _ = ingest(tmp_path, [first])
    _, two, _ = ingest(tmp_path, [second], max_pixels=4000)  # resize settings do not change ids
    assert one[0]["id"] == two[0]["id"]
    _, other, _ = ingest(
        tmp_path, [fx.write_mmupt_parquet(tmp_path / "z.parquet", [{**rows[0], "problem": "Same!"}])]
    )
    assert other[0]["id"] != one[0]["id"]


# ---------------------------------------------------------------------------- images
def _one_image(tmp_path: Path, data: bytes, **config) -> dict:
    path = fx.write_mmupt_parquet(tmp_path / "img.parquet", [{"images": [data], "problem": "q?"}])
    _, samples, rejects = ingest(tmp_path, [path], **config)
    assert rejects == [], rejects
    return samples[0]


def test_transparent_image_is_flattened_on_white(tmp_path: Path) -> None:
    sample = _one_image(tmp_path, fx.png((0, 0, 0, 0), size=(60, 60), mode="RGBA"))
    image = decoded(sample["images"][0])
    assert image.mode == "RGB" and image.getpixel((50, 5)) == (255, 255, 255)
    assert image.getpixel((30, 30)) == (0, 0, 0)  # the opaque black stroke survives


def test_large_image_is_downscaled_keeping_aspect_ratio(tmp_path: Path) -> None:
    sample = _one_image(tmp_path, fx.png(size=(800, 400)), max_pixels=20_000)
    w, h = sample["image_widths"][0], sample["image_heights"][0]
    assert w * h <= 20_000 and abs(w / h - 2.0) < 0.05


def test_small_and_thin_images_reach_the_minimum(tmp_path: Path) -> None:
    tiny = _one_image(tmp_path, fx.png(size=(10, 10)))
    assert (tiny["image_widths"][0], tiny["image_heights"][0]) == (56, 56)
    assert target_size(1000, 20, IngestConfig()) == (1400, 28)  # short side to 28 px, ratio kept
    assert target_size(5000, 100, IngestConfig(max_pixels=50_000)) == (1581, 31)  # area <= max, ratio kept
    assert target_size(10_000, 100, IngestConfig(max_pixels=50_000)) == (
        1785,
        28,
    )  # too thin: long side gives way


@pytest.mark.parametrize(
    ("image", "pixel"),
    [
        (Image.new("L", (64, 64), 128), (128, 128, 128)),
        (Image.new("P", (64, 64), 0), (0, 0, 0)),
        (Image.new("I;16", (64, 64), 30000), (117, 117, 117)),  # 16 bit: scaled, not clipped to white
        (Image.new("LA", (64, 64), (0, 0)), (255, 255, 255)),
    ],
    ids=["L", "P", "I16", "LA"],
)
def test_other_modes_become_rgb(tmp_path: Path, image: Image.Image, pixel: tuple) -> None:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    sample = _one_image(tmp_path, buffer.getvalue())
    assert decoded(sample["images"][0]).getpixel((0, 0)) == pixel


def test_config_rejects_inverted_pixel_range() -> None:
    from mmupt.errors import ConfigError
    from schemas.base import validate_config

    with pytest.raises(ConfigError, match="min_pixels .* is larger than max_pixels"):
        validate_config(IngestConfig, {"min_pixels": 10_000, "max_pixels": 5_000})
    with pytest.raises(ConfigError, match="columns.problme: unknown key"):
        validate_config(IngestConfig, {"columns": {"problme": "q"}})


# ---------------------------------------------------------------------------- streaming
def test_readers_stream_bounded_batches(tmp_path: Path) -> None:
    rows = [{"images": [fx.png((i % 250, 1, 1))], "problem": f"q{i}"} for i in range(150)]
    path = fx.write_mmupt_parquet(tmp_path / "many.parquet", rows)
    jsonl = fx.write_jsonl(
        tmp_path / "many.jsonl", [{"question": f"q{i}", "image": "a.png"} for i in range(150)]
    )
    config = IngestConfig(read_batch_rows=64, **QUIET)
    for source in plan_sources([path, jsonl], config):
        assert [len(batch) for batch in read_rows(source, config)] == [64, 64, 22]


def test_parquet_reading_memory_is_bounded_by_a_row_group_not_the_file(tmp_path: Path) -> None:
    """~30 MB of images in 1 MB row groups: Arrow must never hold much more than one group.

    pyarrow pre-buffers every row group it will read by default (``pre_buffer=True``), which would
    hold the whole file; the reader turns that off.
    """
    schema = pa.schema([("images", pa.list_(pa.binary())), ("problem", pa.string())])
    path = tmp_path / "big.parquet"
    with pq.ParquetWriter(path, schema) as writer:
        for group in range(30):
            rows = [{"images": [os.urandom(32_000)], "problem": f"q{group}-{i}"} for i in range(32)]
            writer.write_table(pa.Table.from_pylist(rows, schema=schema))
    config = IngestConfig(read_batch_rows=16, **QUIET)
    [source] = plan_sources([path], config)
    peak, rows = 0, 0
    for batch in read_rows(source, config):
        rows += len(batch)
        peak = max(peak, pa.total_allocated_bytes())
    assert rows == 960
    assert peak < 8 * 2**20, f"Arrow held {peak / 2**20:.0f} MB for a 30 MB file"


def test_json_document_is_parsed_element_by_element(tmp_path: Path) -> None:
    from stages.ingest.jsonstream import iter_json_rows

    rows = [{"question": f"é {i}" * 30, "n": i + 0.5} for i in range(40)]
    text = json.dumps(rows)
    assert [value for _, value in iter_json_rows(io.StringIO(text), chunk_chars=7)] == rows
    parsed = list(iter_json_rows(io.StringIO('{"a": {"x": 1}, "b": {"x": NaN}}'), chunk_chars=5))
    assert parsed[0] == ("a", {"x": 1}) and math.isnan(parsed[1][1]["x"])


# ---------------------------------------------------------------------------- CLI
def test_cli_ingest_prints_a_summary(tmp_path: Path) -> None:
    from flows.cli import app

    path, _, expected = bad_corpus(tmp_path)
    result = CliRunner().invoke(
        app, ["ingest", str(path), "--out", str(tmp_path / "out")]
    )  # not a TTY: no bar
    assert result.exit_code == 0, result.output
    assert "rows.jsonl" in result.output and "placeholder_mismatch" in result.output
    stats = read_manifest(tmp_path / "out").stats
    assert stats["rows_read"] == len(expected) and stats["reject_reasons"]["path_escape"] == 3
    assert f"({stats['rows_accepted']} samples" in " ".join(result.output.split())


def test_cli_user_error_is_one_line_and_exit_2(tmp_path: Path, monkeypatch, capsys) -> None:
    from flows import cli

    cfg = tmp_path / "c.yaml"
    cfg.write_text("splits: [unlabeled]\n")
    monkeypatch.setattr(
        sys, "argv", ["mmupt", "ingest", str(tmp_path / "nope"), "--out", str(tmp_path / "o"), "-c", str(cfg)]
    )
    with pytest.raises(SystemExit) as exit_info:
        cli.main()
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert "nope: not found" in err and "Traceback" not in err
