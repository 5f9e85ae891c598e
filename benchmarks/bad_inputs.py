"""The bad-input corpus: malformed and hostile inputs across every command, and what each one gets.

    .venv/bin/python benchmarks/bad_inputs.py --write docs/RELIABILITY.md

Every case runs the real ``mmupt`` command line in its own process (so a hang or a crash cannot
take the harness with it) in a fresh folder, with a time limit. Outcomes:

- ``error`` one line on stderr and exit status 2 (the expected answer to bad input);
- ``ok`` exit 0 (the input was usable: bad rows went to the rejects table, accounted for);
- ``traceback`` a Python traceback or any other exit status; ``hang`` the time limit passed.

Each case also checks what must never happen: a row silently lost (ingest: read = accepted +
rejected + duplicates, from the manifest), a user's file destroyed, or code from the input
executed (payloads try to create a marker file).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.ingest_fixtures import bomb_png, corrupt_bytes, png, truncated_png, write_jsonl  # noqa: E402

MARKER = "pwned"
TIME_LIMIT_S = 120


def payload(tmp: Path) -> str:
    """Text that would create the marker file if anything evaluated it."""
    return f"__import__('os').system('touch {tmp / MARKER}')"


@dataclass(frozen=True)
class Case:
    command: str
    what: str
    setup: Callable[[Path], list[str]]
    check: Callable[[Path], str | None] | None = None
    expect: str = "error"  # the outcome that counts as handled: "error" or "ok"


def _dataset(tmp: Path, rows: list[dict | str | bytes], images: dict[str, bytes] | None = None) -> Path:
    root = tmp / "data"
    for name, data in (images if images is not None else {"a.png": png()}).items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes(data)
    write_jsonl(root / "data.jsonl", rows)
    return root


def _row(**extra: object) -> dict:
    return {"question": "How many dots?", "image": "a.png", "answer": "3", **extra}


def _ingest(
    rows: list[dict | str | bytes], images: dict[str, bytes] | None = None
) -> Callable[[Path], list[str]]:
    return lambda tmp: [
        "ingest",
        str(_dataset(tmp, rows, images)),
        "--out",
        str(tmp / "out"),
        "--no-progress",
    ]


def accounted(tmp: Path) -> str | None:
    """Ingest accounting: every row read is accepted, rejected (with a reason) or a duplicate."""
    manifest = tmp / "out" / "manifest.json"
    if not manifest.is_file():
        return None
    stats = json.loads(manifest.read_text())["stats"]
    if stats["rows_read"] != stats["rows_accepted"] + stats["rows_rejected"] + stats["duplicates"]:
        return f"rows lost: {stats}"
    return None


def _rollouts(rows: list[dict | str | bytes]) -> Callable[[Path], list[str]]:
    return lambda tmp: [
        "vote",
        "--rollouts",
        str(write_jsonl(tmp / "r.jsonl", rows)),
        "--out",
        str(tmp / "v"),
    ]


def _vote_rows(*answers: str) -> list[dict | str | bytes]:
    return [
        {"prompt_id": "p", "response_index": i, "response": rf"\boxed{{{a}}}"} for i, a in enumerate(answers)
    ]


def _users_folder(tmp: Path) -> Path:
    folder = tmp / "mine"
    folder.mkdir(exist_ok=True)
    (folder / "notes.txt").write_text("precious")
    return folder


def users_file_intact(tmp: Path) -> str | None:
    for candidate in (tmp / "mine" / "notes.txt", tmp / "notes.txt"):
        if candidate.exists():
            return None if candidate.read_text() == "precious" else f"{candidate} was changed"
    return "the user's file is gone"


def _file(tmp: Path, name: str, data: bytes | str) -> Path:
    path = tmp / name
    path.write_bytes(data if isinstance(data, bytes) else data.encode())
    return path


def _world(tmp: Path) -> Path:
    """A small real world artifact (its held-out split is what ``--benchmark world`` scores)."""
    world = tmp / "world"
    if not (world / "manifest.json").is_file():
        command = [
            str(ROOT / ".venv/bin/mmupt"),
            "world",
            "--out",
            str(world),
            "--config",
            str(_world_config(tmp)),
        ]
        subprocess.run(command, check=True, capture_output=True)
    return world


def _heldout_ids(tmp: Path) -> list[str]:
    import pyarrow.parquet as pq

    rows = pq.read_table(_world(tmp) / "world.parquet", columns=["id", "split"]).to_pylist()
    return [row["id"] for row in rows if row["split"] == "heldout"]


def _score(
    responses: bytes | str | Callable[[Path], str], benchmark: str = "world"
) -> Callable[[Path], list[str]]:
    def setup(tmp: Path) -> list[str]:
        world = _world(tmp)
        text = responses(tmp) if callable(responses) else responses
        return [
            "score", "--benchmark", benchmark, "--data", str(world),
            "--responses", str(_file(tmp, "responses.jsonl", text)), "--out", str(tmp / "s"),
        ]  # fmt: skip

    return setup


def _world_config(tmp: Path) -> Path:
    return _file(tmp, "world.yaml", "n_sft: 4\nn_heldout: 4\nn_unlabeled: 4\nn_dev: 4\n")


def _score_empty(tmp: Path, benchmark: str, data: Path, out: Path) -> list[str]:
    responses = _file(tmp, "r.jsonl", "")
    return [
        "score",
        "--benchmark",
        benchmark,
        "--data",
        str(data),
        "--responses",
        str(responses),
        "--out",
        str(out),
    ]


def _vote_with_config(tmp: Path, config: bytes | str) -> list[str]:
    rollouts = write_jsonl(tmp / "r.jsonl", _vote_rows("1"))
    return [
        "vote",
        "--rollouts",
        str(rollouts),
        "--out",
        str(tmp / "v"),
        "--config",
        _config_file(tmp, config),
    ]


def _evaluate(tmp: Path, model: Path) -> list[str]:
    return [
        "evaluate",
        "--model",
        str(model),
        "--benchmark",
        "world",
        "--data",
        str(_world(tmp)),
        "--out",
        str(tmp / "e"),
    ]


def _weightless_model(tmp: Path) -> Path:
    model = tmp / "m"
    model.mkdir()
    (model / "config.json").write_text("{}")
    return model


def _config_file(tmp: Path, data: bytes | str, name: str = "c.yaml") -> str:
    return str(_file(tmp, name, data))


CASES: list[Case] = [
    # ---- the command line itself
    Case("cli", "unknown command", lambda t: ["trian"]),
    Case("cli", "unknown option", lambda t: ["world", "--out", str(t / "w"), "--colour", "red"]),
    Case("cli", "missing required option", lambda t: ["campaign", "--config", "configs/demo.yaml"]),
    Case("cli", "integer option given a word", lambda t: ["demo", "--rounds", "abc"]),
    # ---- ingest
    Case(
        "ingest", "source path does not exist", lambda t: ["ingest", str(t / "nope"), "--out", str(t / "o")]
    ),
    Case(
        "ingest",
        "empty folder",
        lambda t: (t / "e").mkdir() or ["ingest", str(t / "e"), "--out", str(t / "o")],
    ),
    Case(
        "ingest",
        "JSONL saved as UTF-16",
        lambda t: [
            "ingest",
            str(_file(t, "d.jsonl", json.dumps(_row()).encode("utf-16"))),
            "--out",
            str(t / "o"),
        ],
    ),
    Case(
        "ingest",
        "a Latin-1 line among UTF-8 ones",
        _ingest(
            [_row(), json.dumps(_row(question="Combien de dés ?"), ensure_ascii=False).encode("latin-1")]
        ),
        accounted,
        "ok",
    ),
    Case(
        "ingest",
        "a row nested 100,000 deep",
        _ingest([_row(), "[" * 100_000 + "]" * 100_000]),
        accounted,
        "ok",
    ),
    Case("ingest", "a row that is not an object", _ingest([_row(), "[1, 2, 3]", "42"]), accounted, "ok"),
    Case(
        "ingest",
        "row without an image",
        _ingest([_row(), {"question": "q?", "answer": "1"}]),
        accounted,
        "ok",
    ),
    Case(
        "ingest",
        "image path escaping the dataset",
        _ingest([_row(), _row(image="../../../etc/passwd")]),
        accounted,
        "ok",
    ),
    Case(
        "ingest",
        "image that is not an image",
        _ingest([_row(), _row(image="b.png")], {"a.png": png(), "b.png": corrupt_bytes()}),
        accounted,
        "ok",
    ),
    Case(
        "ingest",
        "truncated PNG",
        _ingest([_row(), _row(image="b.png")], {"a.png": png(), "b.png": truncated_png()}),
        accounted,
        "ok",
    ),
    Case(
        "ingest",
        "decompression bomb PNG (50,000 px square)",
        _ingest([_row(), _row(image="b.png")], {"a.png": png(), "b.png": bomb_png()}),
        accounted,
        "ok",
    ),
    Case("ingest", "1 MB question", _ingest([_row(), _row(question="x" * 1_000_000)]), accounted, "ok"),
    Case(
        "ingest",
        "NUL bytes and bidi marks in the question",
        _ingest([_row(), _row(question="How\x00 many\u202e dots?")]),
        accounted,
        "ok",
    ),
    Case(
        "ingest",
        "options given as one string 'A;B;C'",
        _ingest([_row(), _row(options="A;B;C")]),
        accounted,
        "ok",
    ),
    Case("ingest", "list-valued answer", _ingest([_row(), _row(answer=["4", "5"])]), accounted, "ok"),
    Case(
        "ingest", "code in the question", lambda t: _ingest([_row(question=payload(t))])(t), accounted, "ok"
    ),
    Case(
        "ingest",
        "--out is the dataset itself",
        lambda t: ["ingest", str(_dataset(t, [_row()])), "--out", str(t / "data")],
    ),
    Case(
        "ingest",
        "--out is a folder of the user's files",
        lambda t: ["ingest", str(_dataset(t, [_row()])), "--out", str(_users_folder(t))],
        users_file_intact,
    ),
    Case(
        "ingest",
        "unknown --layout",
        lambda t: ["ingest", str(_dataset(t, [_row()])), "--out", str(t / "o"), "--layout", "csv9"],
    ),
    Case(
        "ingest",
        "a .parquet file that is not Parquet",
        lambda t: ["ingest", str(_file(t, "d.parquet", b"PAR1 not really")), "--out", str(t / "o")],
    ),
    Case(
        "ingest",
        "zero-byte JSONL (an empty artifact, 0 rows read)",
        lambda t: ["ingest", str(_file(t, "d.jsonl", b"")), "--out", str(t / "out")],
        accounted,
        "ok",
    ),
    # ---- vote
    Case(
        "vote",
        "rollouts file does not exist",
        lambda t: ["vote", "--rollouts", str(t / "nope.jsonl"), "--out", str(t / "v")],
    ),
    Case(
        "vote",
        "unsupported suffix",
        lambda t: ["vote", "--rollouts", str(_file(t, "r.csv", "a,b")), "--out", str(t / "v")],
    ),
    Case(
        "vote",
        "empty file",
        lambda t: ["vote", "--rollouts", str(_file(t, "r.jsonl", "")), "--out", str(t / "v")],
    ),
    Case(
        "vote",
        "UTF-16 rollouts",
        lambda t: [
            "vote",
            "--rollouts",
            str(_file(t, "r.jsonl", json.dumps(_vote_rows("1")[0]).encode("utf-16"))),
            "--out",
            str(t / "v"),
        ],
    ),
    Case("vote", "a line nested 100,000 deep", _rollouts(["[" * 100_000 + "]" * 100_000])),
    Case("vote", "a line that is not an object", _rollouts(["[1]"])),
    Case("vote", "missing prompt_id", _rollouts([{"response": "x"}])),
    Case("vote", "response that is not a string", _rollouts([{"prompt_id": "p", "response": 3}])),
    Case(
        "vote",
        "response_index repeated",
        _rollouts([{"prompt_id": "p", "response_index": 0, "response": "a"}] * 2),
    ),
    Case(
        "vote",
        "response_index on some rows only",
        _rollouts(
            [{"prompt_id": "p", "response_index": 0, "response": "a"}, {"prompt_id": "p", "response": "b"}]
        ),
    ),
    Case(
        "vote",
        "power towers, huge factorials and Gamma in boxes",
        _rollouts(
            _vote_rows(*[r"9^{9^{9^{9}}}", "(10^{8})!", r"\Gamma(10^{10})", "2^{99999}", "x^{9999}+1"] * 2)
        ),
        None,
        "ok",
    ),
    Case(
        "vote", "code in a box", lambda t: _rollouts(_vote_rows(payload(t), payload(t), "3"))(t), None, "ok"
    ),
    Case(
        "vote",
        "zero-width and full-width digits",
        _rollouts(_vote_rows("2\u200b", "\uff12", "2")),
        None,
        "ok",
    ),
    Case(
        "vote",
        "--out is a folder of the user's files",
        lambda t: [
            "vote",
            "--rollouts",
            str(write_jsonl(t / "r.jsonl", _vote_rows("1"))),
            "--out",
            str(_users_folder(t)),
        ],
        users_file_intact,
    ),
    Case(
        "vote",
        "--out is the folder holding the rollouts",
        lambda t: ["vote", "--rollouts", str(write_jsonl(t / "r.jsonl", _vote_rows("1"))), "--out", str(t)],
    ),
    Case(
        "vote",
        "config file saved as UTF-16",
        lambda t: _vote_with_config(t, "min_vote_ratio: 0.5".encode("utf-16")),
    ),
    Case(
        "vote",
        "config with an unknown key",
        lambda t: _vote_with_config(t, "min_vote_ration: 0.5"),
    ),
    Case(
        "vote",
        "config that is not YAML",
        lambda t: _vote_with_config(t, "a: [1,"),
    ),
    Case(
        "vote",
        "config YAML nested 50,000 deep",
        lambda t: _vote_with_config(t, "a: " + "[" * 50_000 + "]" * 50_000),
    ),
    # ---- score and evaluate
    Case(
        "score",
        "unknown benchmark",
        lambda t: _score_empty(t, "mathvistaa", t / "d", t / "s"),
    ),
    Case(
        "score",
        "benchmark data missing",
        lambda t: _score_empty(t, "mathvista", t / "nope", t / "s"),
    ),
    Case(
        "score",
        "--out is the user's file",
        lambda t: _score_empty(t, "world", t / "d", _file(t, "notes.txt", "precious")),
        users_file_intact,
    ),
    Case(
        "score",
        "responses saved as UTF-16",
        _score(json.dumps({"id": "0", "response": "3"}).encode("utf-16")),
    ),
    Case("score", "responses with no id the data has", _score(json.dumps({"id": "nope", "response": "3"}))),
    Case(
        "score",
        "hostile responses (towers, code, 1 MB)",
        lambda t: _score(
            lambda tmp: "\n".join(
                json.dumps({"id": key, "response": r})
                for key, r in zip(
                    _heldout_ids(tmp),
                    [r"\boxed{9^{9^{9^{9}}}}", payload(tmp), "x" * 1_000_000, ""],
                    strict=False,
                )
            )
        )(t),
        None,
        "ok",
    ),
    Case("evaluate", "model folder does not exist", lambda t: _evaluate(t, t / "nope")),
    Case("evaluate", "model folder without weights", lambda t: _evaluate(t, _weightless_model(t))),
    # ---- training, world, model
    Case(
        "train",
        "model folder is not a checkpoint",
        lambda t: ["train", "--samples", str(t / "nope"), "--model", str(t), "--out", str(t / "o")],
    ),
    Case(
        "train",
        "config with a wrong type",
        lambda t: [
            "train",
            "--samples",
            str(t),
            "--model",
            str(t),
            "--out",
            str(t / "o"),
            "--config",
            _config_file(t, "data: {max_steps: many}"),
        ],
    ),
    Case(
        "world",
        "world version 3",
        lambda t: ["world", "--out", str(t / "w"), "--config", _config_file(t, "version: 3")],
    ),
    Case(
        "world",
        "--out is a folder of the user's files",
        lambda t: ["world", "--out", str(_users_folder(t)), "--config", str(_world_config(t))],
        users_file_intact,
    ),
    Case(
        "model",
        "world artifact missing",
        lambda t: ["model", "--world", str(t / "nope"), "--out", str(t / "m")],
    ),
    # ---- campaigns
    Case(
        "campaign",
        "config file missing",
        lambda t: ["campaign", "--config", str(t / "nope.yaml"), "--out", str(t / "c")],
    ),
    Case(
        "campaign",
        "start model and sources missing",
        lambda t: [
            "campaign",
            "--config",
            _config_file(
                t,
                "embedded: null\nstart_model: /nonexistent/model\nsources: [{paths: [/nope]}]\nbenchmarks: []\n",
            ),
            "--out",
            str(t / "c"),
        ],
    ),
    Case("compare", "campaign folder missing", lambda t: ["compare", "--campaign", str(t / "nope")]),
]


def run_case(case: Case, tmp: Path) -> tuple[str, str, float, str | None]:
    """(outcome, first stderr line, seconds, violated guarantee or None)."""
    args = case.setup(tmp)
    env = dict(os.environ, OMP_NUM_THREADS="1", PREFECT_API_URL="http://127.0.0.1:9/api")
    started = time.perf_counter()
    try:
        done = subprocess.run(
            [str(ROOT / ".venv/bin/mmupt"), *args],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            errors="replace",
            timeout=TIME_LIMIT_S,
        )
    except subprocess.TimeoutExpired:
        return "hang", "", TIME_LIMIT_S, None
    seconds = time.perf_counter() - started
    errors = [line for line in done.stderr.splitlines() if line.startswith("error:")]
    if "Traceback (most recent call last)" in done.stderr or done.returncode not in (0, 2):
        outcome = "traceback"
    elif done.returncode == 2 and len(errors) == 1:
        outcome = "error"
    elif done.returncode == 0:
        outcome = "ok"
    else:
        outcome = "traceback"
    first = errors[0][len("error: ") :] if errors else ""
    first = first.replace(str(tmp), "<tmp>")
    problem = case.check(tmp) if case.check is not None else None
    if (tmp / MARKER).exists():
        problem = "input was executed"
    return outcome, first, seconds, problem


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--write", type=Path, help="write the table to this Markdown file")
    parser.add_argument("--only", help="run only the cases of this command")
    args = parser.parse_args()
    rows, totals = (
        [],
        {
            "cases": 0,
            "handled": 0,
            "tracebacks": 0,
            "hangs": 0,
            "rows lost or files destroyed": 0,
            "executed": 0,
        },
    )
    for case in CASES:
        if args.only and case.command != args.only:
            continue
        with tempfile.TemporaryDirectory() as tmp:
            outcome, message, seconds, problem = run_case(case, Path(tmp))
        totals["cases"] += 1
        totals["handled"] += outcome == case.expect and problem is None
        totals["tracebacks"] += outcome == "traceback"
        totals["hangs"] += outcome == "hang"
        totals["executed"] += problem == "input was executed"
        totals["rows lost or files destroyed"] += problem is not None and problem != "input was executed"
        shown = message if len(message) <= 140 else message[:137] + "..."
        rows.append(
            f"| {case.command} | {case.what} | {outcome} | {seconds:.1f} | {problem or ''} | {shown.replace('|', '/')} |"
        )
        print(rows[-1], flush=True)
    table = "\n".join(
        ["| command | input | outcome | s | violated | message |", "|---|---|---|---:|---|---|", *rows]
    )
    summary = ", ".join(f"{name} {value}" for name, value in totals.items())
    print(summary)
    if args.write:
        args.write.write_text(
            "# Reliability: the bad-input corpus\n\n"
            "Generated by `.venv/bin/python benchmarks/bad_inputs.py --write docs/RELIABILITY.md` "
            f"({time.strftime('%Y-%m-%d')}); each case runs the real `mmupt` command in its own process "
            f"with a {TIME_LIMIT_S} s limit. `error`: one line on stderr, exit 2; `ok`: exit 0 (bad rows "
            "went to the rejects table and are accounted for); `traceback`; `hang`. `violated`: a row "
            "lost, a user's file changed, or input executed.\n\n"
            f"**Totals: {summary}.**\n\n{table}\n"
        )


if __name__ == "__main__":
    main()
