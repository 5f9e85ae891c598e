"""Ingest: user datasets (MM-UPT/EasyR1, R1-V, Hugging Face Parquet, JSON/JSONL, image folders, the
embedded world) -> validated ``samples`` + ``rejects``. Entry point: ``run_ingest``."""

from stages.ingest.records import REASONS
from stages.ingest.run import run_ingest

__all__ = ["REASONS", "run_ingest"]
