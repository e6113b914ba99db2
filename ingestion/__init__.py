"""Ingestion: export files in the landing directory → the raw layer (Parquet + DuckDB).

See docs/ingestion.md for the protocol and docs/architecture.md for the raw contract.
"""

from .core import ingest
from .outcomes import FileOutcome, IngestResult
from .schema import ensure_raw_schema

__all__ = ["FileOutcome", "IngestResult", "ensure_raw_schema", "ingest"]
