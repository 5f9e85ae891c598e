"""Ingest throughput and memory: rows/s and peak RSS for growing MM-UPT Parquet inputs.

    .venv/bin/python benchmarks/ingest_bench.py --rows 5000 20000
    .venv/bin/python benchmarks/ingest_bench.py --kind noise --rows 2000 8000   # large input files

For each size it writes an MM-UPT/EasyR1 Parquet file of small, all-distinct PNG diagrams (in
chunks, so generating never holds the file in memory), then ingests it in a *fresh* process and
reports that process's peak RSS (``VmHWM``) next to its RSS right after imports. Ingest
streams, so the peak should stay flat as rows grow; a loader that read the table whole would
grow with the input file instead. Results go in ``benchmarks/INGEST.md``.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import random
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
from PIL import Image, ImageDraw

ROOT = Path(__file__).resolve().parents[1]
SCHEMA = pa.schema([("images", pa.list_(pa.binary())), ("problem", pa.string()), ("answer", pa.string())])


def diagram(rng: random.Random, index: int) -> bytes:
    """A small PNG with a few random shapes; the index is drawn in so no two are equal."""
    size = rng.choice([(96, 96), (128, 96), (160, 120), (224, 168)])
    image = Image.new("RGB", size, (255, 255, 255))
    draw = ImageDraw.Draw(image)
    for _ in range(rng.randint(2, 5)):
        x, y = rng.randrange(size[0] - 20), rng.randrange(size[1] - 20)
        colour = tuple(rng.randrange(256) for _ in range(3))
        draw.ellipse((x, y, x + rng.randint(8, 20), y + rng.randint(8, 20)), fill=colour)
    draw.text((4, 4), str(index), fill=(0, 0, 0))
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def noise(rng: random.Random, index: int) -> bytes:
    """A 128x128 PNG of random pixels (~50 KB, incompressible): makes the input file large."""
    image = Image.frombytes("RGB", (128, 128), rng.randbytes(128 * 128 * 3))
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", compress_level=1)
    return buffer.getvalue()


KINDS = {"diagram": diagram, "noise": noise}


def make_dataset(path: Path, rows: int, kind: str, row_group: int) -> None:
    rng = random.Random(rows)
    draw = KINDS[kind]
    with pq.ParquetWriter(path, SCHEMA) as writer:
        for start in range(0, rows, row_group):
            batch = [
                {
                    "images": [draw(rng, i)],
                    "problem": f"<image>How many circles are there? (#{i})",
                    "answer": "3",
                }
                for i in range(start, min(rows, start + row_group))
            ]
            writer.write_table(pa.Table.from_pylist(batch, schema=SCHEMA), row_group_size=row_group)


def _memory_mb(key: str) -> float:
    """``VmRSS`` (now) or ``VmHWM`` (peak) of this process, in MiB.

    Not ``ru_maxrss``: Linux carries it across ``execve``, so a child would report its parent's
    peak (the dataset generator's) as its own. ``VmHWM`` starts afresh with the new process image.
    """
    status = Path("/proc/self/status")
    if status.is_file():
        for line in status.read_text().splitlines():
            if line.startswith(key + ":"):
                return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # elsewhere: best effort


def child(source: Path, out: Path) -> None:
    """Run in a fresh process: ingest ``source`` and print one JSON line of measurements."""
    sys.path.insert(0, str(ROOT))
    from schemas.ingest import IngestConfig
    from stages.ingest import run_ingest

    baseline = _memory_mb("VmRSS")
    started = time.perf_counter()
    manifest = run_ingest([source], out, IngestConfig(progress=False))
    seconds = time.perf_counter() - started
    rows = manifest.stats["rows_read"]
    print(
        json.dumps(
            {
                "rows": rows,
                "accepted": manifest.stats["rows_accepted"],
                "seconds": round(seconds, 2),
                "rows_per_s": round(rows / seconds, 1),
                "rss_after_imports_mb": round(baseline, 1),
                "peak_rss_mb": round(_memory_mb("VmHWM"), 1),
            }
        )
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, nargs="+", default=[5000, 20000])
    parser.add_argument(
        "--kind", choices=sorted(KINDS), default="diagram", help="diagram: small PNGs; noise: ~50 KB"
    )
    parser.add_argument(
        "--row-group", type=int, default=1000, help="Rows per Parquet row group of the input."
    )
    parser.add_argument("--child", nargs=2, metavar=("SOURCE", "OUT"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(Path(args.child[0]), Path(args.child[1]))
        return
    print(f"machine: {os.cpu_count()} CPU cores visible; python {sys.version.split()[0]}")
    print("| images | rows | input MB | seconds | rows/s | RSS after imports MB | peak RSS MB |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    with tempfile.TemporaryDirectory(prefix="ingest-bench-") as tmp:
        for rows in args.rows:
            source = Path(tmp) / f"train-{rows}.parquet"
            make_dataset(source, rows, args.kind, args.row_group)
            result = subprocess.run(
                [sys.executable, __file__, "--child", str(source), str(Path(tmp) / f"out-{rows}")],
                capture_output=True,
                text=True,
                check=True,
                cwd=ROOT,
            )
            m = json.loads(result.stdout.strip().splitlines()[-1])
            assert m["accepted"] == rows, m
            size_mb = source.stat().st_size / 2**20
            print(
                f"| {args.kind} | {rows} | {size_mb:.1f} | {m['seconds']} | {m['rows_per_s']} | "
                f"{m['rss_after_imports_mb']} | {m['peak_rss_mb']} |",
                flush=True,
            )


if __name__ == "__main__":
    main()
