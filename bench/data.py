"""The benchmark's data, prepared once and cached under <root>/data/<scale>: the generated
landing, the month ingested (stage ingest_month) and staged (stage stage_month), and the
throw-away clones and one-day landings each run works on. `stage` runs one stage of
bench/stage.py on a warehouse, measured.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
from pathlib import Path

from bench.measure import measure

# The benchmark generates its exports and ingests them at once: they are complete when
# written, so the quiet period that protects real deliveries (exports.md) is off here.
os.environ.setdefault("SUPERNOVA_INGEST_QUIET_SECONDS", "0")

START = "2026-10-01"
MONTH = "2026-10"
DEFAULT_DAYS = 38  # October plus its 7-day return window: the month settles after 2026-11-08
SEED = 7


def _py(env_dir: Path | None = None) -> str:
    return str((env_dir / "bin" / "python") if env_dir else Path(sys.executable))


def dataset(root: Path, scale: str, days: int, log=print) -> Path:
    d = root / "data" / scale
    landing = d / "landing"
    marker = d / "generated.json"
    want = {"start": START, "days": days, "scale": scale, "seed": SEED}
    if marker.exists():
        args = json.loads(marker.read_text()).get("args", {})
        if args == want and landing.is_dir():
            return landing
        if (
            args == want
            and (d / "ingest_month.json").exists()
            and (d / "warehouse" / "supernova.duckdb").exists()
        ):
            # the landing was deleted to save disk after the month was ingested: the cached
            # warehouse is still good for every stage but ingest_day (which is then skipped)
            landing.mkdir(parents=True, exist_ok=True)
            return landing
        if args.get("replicated_from"):  # made by bench.replicate: no landing of its own
            landing.mkdir(parents=True, exist_ok=True)
            return landing
    shutil.rmtree(d, ignore_errors=True)
    d.mkdir(parents=True)
    log(f"generating {scale} data: {days} days from {START} into {landing} ...")
    m = measure(
        [
            _py(),
            "-m",
            "supernova.cli",
            "generate",
            "--out",
            str(landing),
            "--start",
            START,
            "--days",
            str(days),
            "--scale",
            scale,
            "--seed",
            str(SEED),
        ],
        d / "generate.log",
    )
    if m["rc"] != 0:
        raise SystemExit(f"generator failed, see {m['log']}")
    size = sum(p.stat().st_size for p in landing.rglob("*") if p.is_file())
    marker.write_text(json.dumps({"args": want, "measure": m, "landing_bytes": size}, indent=1))
    return landing


def base_warehouse(root: Path, scale: str, landing: Path, log=print) -> tuple[Path, dict]:
    """The month ingested once (stage ingest_month), reused by every run."""
    d = root / "data" / scale
    wh = d / "warehouse"
    marker = d / "ingest_month.json"
    if marker.exists() and (wh / "supernova.duckdb").exists():
        return wh, json.loads(marker.read_text())
    shutil.rmtree(wh, ignore_errors=True)
    log(f"ingesting the whole {scale} landing into {wh} (stage ingest_month) ...")
    m = stage("ingest", landing, wh, d / "ingest_month.log")
    if m["rc"] != 0:
        raise SystemExit(f"ingest failed, see {m['log']}")
    m.update(data_facts(wh))
    marker.write_text(json.dumps(m, indent=1))
    return wh, m


def staged_base(root: Path, scale: str, wh: Path, landing: Path, log=print) -> dict:
    """The base warehouse with its staging layer built by the current staging code (stage
    `stage_month`: what the daily ingest_exports runs do, all at once). Re-done when the
    staging code changed, since a settle would otherwise pay for a full staging refresh."""
    from supernova import staging

    d = root / "data" / scale
    marker = d / "stage_month.json"
    want = staging.code_fingerprint()
    if marker.exists():
        m = json.loads(marker.read_text())
        if m.get("code_fingerprint") == want:
            return m
    log(f"staging the ingested {scale} warehouse {wh} (stage stage_month) ...")
    m = stage("stage", landing, wh, d / "stage_month.log")
    if m["rc"] != 0:
        raise SystemExit(f"staging failed, see {m['log']}")
    m["code_fingerprint"] = want
    marker.write_text(json.dumps(m, indent=1))
    return m


def data_facts(wh: Path) -> dict:
    import duckdb

    con = duckdb.connect(str(wh / "supernova.duckdb"), read_only=True)
    try:
        rows = {
            t: con.execute(f"select count(*) from raw.{t}").fetchone()[0]
            for t in ("orders", "clicks", "order_events", "buyers", "links", "promoters")
        }
        rows["orders_in_month"] = con.execute(
            f"select count(*) from raw.orders where ordered_at >= '{MONTH}-01' "
            f"and ordered_at < '{MONTH}-01'::date + interval 1 month"
        ).fetchone()[0]
    finally:
        con.close()
    raw_bytes = sum(p.stat().st_size for p in (wh / "raw").rglob("*.parquet"))
    return {"raw_rows": rows, "raw_parquet_bytes": raw_bytes}


def clone(base: Path, dest: Path) -> Path:
    """A throw-away warehouse: a copy of the DuckDB file, the raw Parquet shared."""
    shutil.rmtree(dest, ignore_errors=True)
    dest.mkdir(parents=True)
    shutil.copy2(base / "supernova.duckdb", dest / "supernova.duckdb")
    os.symlink((base / "raw").resolve(), dest / "raw")
    return dest


def day_landing(landing: Path, day: str, dest: Path) -> Path:
    """A landing folder holding only one delivery day (hard links to its files: ingestion
    lists regular files and does not follow symlinks)."""
    shutil.rmtree(dest, ignore_errors=True)
    for export_dir in sorted(p for p in landing.iterdir() if p.is_dir()):
        src = export_dir / day
        if src.is_dir():
            out = dest / export_dir.name / day
            out.mkdir(parents=True, exist_ok=True)
            for f in sorted(src.iterdir()):
                try:
                    os.link(f, out / f.name)
                except OSError:
                    shutil.copy2(f, out / f.name)
    return dest


def stage(
    name: str,
    landing: Path,
    wh: Path,
    log_path: Path,
    env_dir: Path | None = None,
    extra_env: dict | None = None,
    module: str = "bench.stage",
    extra_args: list | None = None,
) -> dict:
    return measure(
        [
            _py(env_dir),
            "-m",
            module,
            name,
            "--landing",
            str(landing),
            "--warehouse",
            str(wh),
            "--month",
            MONTH,
            *(extra_args or []),
        ],
        log_path,
        env=extra_env,
    )


def marts_available() -> bool:
    import importlib.util

    return importlib.util.find_spec("supernova.marts") is not None
