"""Tiny datasets in every layout ingest reads, built in code (no downloads, a few KB each).

Field names follow the real releases (see ``../shared/benchmarks/README.md``): MathVista's
``pid``/``decoded_image``, We-Math's keys with spaces, MATH-V's ``<image1>``, R1-V's ``solution``.
"""

from __future__ import annotations

import csv
import io
import json
import struct
import zlib
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
from PIL import Image, ImageDraw

from mmupt.store import write_artifact
from schemas.artifacts import WORLD


def png(color: tuple[int, ...] = (200, 30, 30), size: tuple[int, int] = (40, 30), mode: str = "RGB") -> bytes:
    """A small valid PNG; distinct colours give distinct bytes (and so distinct row ids)."""
    image = Image.new(mode, size, color)
    if mode in ("RGB", "RGBA"):
        ImageDraw.Draw(image).line(
            (0, 0, size[0] - 1, size[1] - 1), fill=(0, 0, 0) + (255,) * (mode == "RGBA")
        )
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def jpeg(color: tuple[int, int, int] = (10, 120, 200), size: tuple[int, int] = (48, 36)) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, color).save(buffer, format="JPEG")
    return buffer.getvalue()


def _chunk(kind: bytes, data: bytes) -> bytes:
    return (
        struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
    )


def bomb_png(width: int = 50_000, height: int = 50_000) -> bytes:
    """A ~60-byte PNG whose header declares ``width x height`` pixels: a decompression bomb."""
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + _chunk(b"IHDR", header)
        + _chunk(b"IDAT", zlib.compress(b"\0" * 16))
        + _chunk(b"IEND", b"")
    )


def truncated_png() -> bytes:
    """A PNG cut in the middle of its pixel data: the header is fine, decoding is not."""
    data = png(size=(64, 64))
    return data[: len(data) // 2]


def bad_crc_png() -> bytes:
    """A PNG whose pixel-data checksum is wrong (bit rot): it decodes, only ``verify`` notices."""
    data = bytearray(png(size=(64, 64)))
    at = data.find(b"IDAT")
    length = struct.unpack(">I", data[at - 4 : at])[0]
    data[at + 4 + length] ^= 0xFF  # first byte of the IDAT CRC
    return bytes(data)


def corrupt_bytes() -> bytes:
    return b"this is not an image at all"


# ---------------------------------------------------------------------------- Parquet layouts
def write_mmupt_parquet(path: Path, rows: list[dict[str, Any]], struct_images: bool = False) -> Path:
    """MM-UPT / EasyR1: ``images`` (list of bytes, or of ``{bytes, path}``), ``problem``, ``answer``."""
    image_type = pa.struct([("bytes", pa.binary()), ("path", pa.string())]) if struct_images else pa.binary()
    fields = [pa.field("images", pa.list_(image_type)), pa.field("problem", pa.string())]
    if any("answer" in row for row in rows):
        fields.append(pa.field("answer", pa.string()))
    extra = sorted({k for row in rows for k in row} - {"images", "problem", "answer"})
    fields += [pa.field(name, pa.string()) for name in extra]
    data = []
    for row in rows:
        images = row["images"]
        if struct_images:
            images = [{"bytes": b, "path": f"img{i}.png"} for i, b in enumerate(images)]
        data.append({**row, "images": images})
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.Table.from_pylist(data, schema=pa.schema(fields)), path)
    return path


def write_geoqa_parquet(path: Path, rows: list[tuple[bytes, str, str]]) -> Path:
    """R1-V GEOQA style: ``image`` as an HF Image struct, ``problem``, ``solution`` with ``<answer>``."""
    image_type = pa.struct([("bytes", pa.binary()), ("path", pa.string())])
    schema = pa.schema([("image", image_type), ("problem", pa.string()), ("solution", pa.string())])
    data = [{"image": {"bytes": b, "path": None}, "problem": q, "solution": s} for b, q, s in rows]
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.Table.from_pylist(data, schema=schema), path)
    return path


def write_hf_mathvista(root: Path, split: str = "testmini", n: int = 3) -> Path:
    """A MathVista-like HF dataset folder: ``data/<split>-00000-of-00001.parquet``.

    ``image`` is a *string* path (not to be opened), ``decoded_image`` the HF Image struct.
    """
    image_type = pa.struct([("bytes", pa.binary()), ("path", pa.string())])
    schema = pa.schema(
        [
            ("pid", pa.string()),
            ("question", pa.string()),
            ("image", pa.string()),
            ("decoded_image", image_type),
            ("choices", pa.list_(pa.string())),
            ("answer", pa.string()),
            ("question_type", pa.string()),
            ("metadata", pa.struct([("source", pa.string())])),
        ]
    )
    rows = [
        {
            "pid": str(i + 1),
            "question": f"What is the value of x in figure {i}?",
            "image": f"images/{i + 1}.jpg",
            "decoded_image": {"bytes": jpeg((20 * i, 90, 160)), "path": f"{i + 1}.jpg"},
            "choices": ["1", "2"] if i % 2 else None,
            "answer": str(i + 2),
            "question_type": "multi_choice" if i % 2 else "free_form",
            "metadata": {"source": "synthetic"},
        }
        for i in range(n)
    ]
    path = root / "data" / f"{split}-00000-of-00001.parquet"
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.Table.from_pylist(rows, schema=schema), path)
    (root / "README.md").write_text("dataset card\n")
    return root


# ---------------------------------------------------------------------------- JSON / folder
def save_image(folder: Path, name: str, data: bytes) -> str:
    path = folder / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return name


def write_jsonl(path: Path, rows: list[dict[str, Any] | bytes | str]) -> Path:
    """One row per line; ``bytes`` rows are written raw (for non-UTF-8 and broken lines)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("wb") as handle:
        for row in rows:
            line = (
                row if isinstance(row, bytes) else (row if isinstance(row, str) else json.dumps(row)).encode()
            )
            handle.write(line.rstrip(b"\n") + b"\n")
    return path


def write_mathvision(root: Path, n: int = 3) -> Path:
    """MATH-V repository layout: ``testmini.jsonl`` + ``images/<id>.jpg``; questions hold ``<image1>``."""
    rows = []
    for i in range(n):
        save_image(root, f"images/{i + 4}.jpg", jpeg((30 * i, 60, 90)))
        rows.append(
            {
                "id": str(i + 4),
                "question": f"How many digits are in picture {i}?\n<image1>",
                "options": [],
                "answer": str(i + 6),
                "solution": None,
                "level": 1,
                "subject": "counting",
                "image": f"images/{i + 4}.jpg",
            }
        )
    return write_jsonl(root / "testmini.jsonl", rows)


def write_wemath(root: Path) -> Path:
    """We-Math repository layout: a JSON list with keys that contain spaces, ``image_path`` relative."""
    rows = []
    for i in range(2):
        save_image(root, f"2steps/image/1-{i + 1}.png", png((10, 20 * i, 30)))
        rows.append(
            {
                "ID": f"2steps_{i + 1}",
                "split": "testmini",
                "knowledge concept": "Length units",
                "question": f"OA = ( ) m, AB = ( ) m? ({i})",
                "option": "A. 300, 400;B. 400, 300",
                "answer": "A",
                "image_path": f"2steps/image/1-{i + 1}.png",
                "key": f"2steps_{i + 1}",
                "question number": i + 1,
            }
        )
    path = root / "testmini.json"
    path.write_text(json.dumps(rows, indent=1), encoding="utf-8")
    return path


def write_mathvista_json(root: Path) -> Path:
    """MathVista repository layout: a JSON *object* mapping pid -> row, images under ``images/``."""
    rows = {}
    for i in range(2):
        save_image(root, f"images/{i + 1}.jpg", jpeg((90, 30 * i, 10)))
        rows[str(i + 1)] = {
            "question": f"Find y ({i}).",
            "image": f"images/{i + 1}.jpg",
            "answer": "3",
            "unit": None,
        }
    path = root / "testmini.json"
    path.write_text(json.dumps(rows), encoding="utf-8")
    return path


def write_folder(root: Path, rows: list[tuple[str, bytes | None, str, str]]) -> Path:
    """A plain image folder with ``questions.csv`` (file_name, question, answer)."""
    root.mkdir(parents=True, exist_ok=True)
    with (root / "questions.csv").open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["file_name", "question", "answer"])
        for name, data, question, answer in rows:
            if data is not None:
                save_image(root, name, data)
            writer.writerow([name, question, answer])
    return root


# ---------------------------------------------------------------------------- world
def write_world(out_dir: Path, splits: dict[str, int]) -> Path:
    """A world artifact (table ``world``) with ``splits[name]`` rows per split."""
    rows = []
    for split, count in splits.items():
        for i in range(count):
            rows.append(
                {
                    "id": f"{split}-{i}",
                    "images": [png((i * 7 % 255, len(split) * 20, 99))],
                    "problem": f"<image>How many sides does shape {split}-{i} have?",
                    "answer": str(3 + i),
                    "solution": f"Count them. \\boxed{{{3 + i}}}",
                    "task": "count_sides",
                    "choices": None,
                    "difficulty": 1,
                    "split": split,
                    "sibling_problem": "<image>How many shapes are in the image?",
                    "sibling_answer": "1",
                }
            )
    write_artifact(out_dir, "world", {"world": pa.Table.from_pylist(rows, schema=WORLD)})
    return out_dir
