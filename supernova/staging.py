"""Keeping the incremental staging layer (dbt_project/macros/staging.sql) trustworthy.

An incremental staging model only recomputes the keys of newly delivered files, which is
exact as long as the staging SQL that built the table is the SQL that runs now. So every
dbt invocation whose selection includes staging starts from `plan_build()` and, once it
succeeded, calls the plan's `record()`:

* the fingerprint of the staging code (its models and the macros they use) is stored in
  `staging.staging_code` after a successful build, with a digest of the files staging
  then holds (its data tests passed on exactly those);
* when the stored fingerprint is missing or different, the next build is a full refresh
  (`--full-refresh`), logged with the reason. Nobody has to remember to do it;
* when staging is verified current (every loaded file merged, same code, same files),
  the invocation leaves staging out (SKIP_STAGING); otherwise it builds all of staging
  (ALL_OF_STAGING), not only what its own selection needs, so that the next one can.

The versions views (stg_exports__*_versions, every delivered row) are part of staging:
built with it, left out with it. Their key checks read only the files their staging
model has not staged yet (macros/staging_key_checks.sql).

`stage()` is the ingest path's step: merge the newly loaded files into staging, so that a
month's settlement starts from current staging instead of deduplicating the history.

The staging stage also keeps the daily precomputation (models/daily/: attribution, §1)
current: it is built with staging, fingerprinted with it, verified with it, and left out
with it. Its models track the files they consumed in the same record tables
(DAILY_MODELS), so "verified current" covers them too.
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from supernova import settings
from supernova.warehouse import connect, table_exists

STAGING_MODELS = (
    "buyers",
    "clicks",
    "commission_rules",
    "groups",
    "links",
    "order_events",
    "orders",
    "promoters",
    "skus",
)
# Models downstream of staging kept current by the staging stage, with the exports whose
# files each consumes (recorded in staging.staged_files / withdrawn_files under its name).
DAILY_MODELS = {
    "int_daily__order_attribution": ("orders", "clicks"),
    "int_daily__line_events": ("order_events",),
}
# what the staging stage builds: the staging models and the daily precompute
STAGING_PATHS = ["path:models/staging", "path:models/daily"]
STAGING_SELECT = ["--select", *STAGING_PATHS, "--exclude-resource-type", "unit_test"]


class StagingFailed(RuntimeError):
    """dbt could not build the staging layer; nothing downstream was touched."""


def code_files() -> list[Path]:
    root = settings.DBT_PROJECT_DIR
    models = sorted(
        p
        for layer in ("staging", "daily")
        for p in (root / "models" / layer).rglob("*")
        if p.is_file()
    )
    # delivered_last() and cfg() live in settlement_config.sql, the incremental logic in
    # staging.sql, §1 in attribution.sql (struct_of in portable.sql), the lines' event
    # summary in line_events.sql; the versions views' key check in staging_key_checks.sql,
    # reached through generic_tests.sql, and which rows the tests read (and the rows'
    # stamp) in staging_tests_window.sql: the record says staging's tests passed, so their
    # code counts too
    macros = (
        "staging.sql",
        "settlement_config.sql",
        "attribution.sql",
        "line_events.sql",
        "portable.sql",
        "staging_key_checks.sql",
        "staging_tests_window.sql",
        "generic_tests.sql",
    )
    return models + [root / "macros" / m for m in macros]


def _rule_settings() -> bytes:
    """The dbt_project.yml settings the precomputation depends on (the attribution
    window): changing one must rebuild it, like a code change."""
    import yaml

    project = yaml.safe_load((settings.DBT_PROJECT_DIR / "dbt_project.yml").read_text())
    window = project["vars"]["supernova"]["attribution_window_days"]
    return f"attribution_window_days={window}".encode()


def code_fingerprint() -> str:
    h = hashlib.sha256()
    root = settings.DBT_PROJECT_DIR
    for p in code_files():
        h.update(str(p.relative_to(root)).encode())
        h.update(b"\0")
        h.update(p.read_bytes())
    h.update(_rule_settings())
    return h.hexdigest()


def full_refresh_reason(warehouse: Path) -> str | None:
    """Why the next staging build must be a full refresh, or None (incremental is exact)."""
    with connect(warehouse) as con:
        built = [m for m in STAGING_MODELS if table_exists(con, "staging", f"stg_exports__{m}")]
        if not built:
            return None  # the first build is a full build anyway
        record = _recorded(con)
    if record is None:
        return "staging was built before its code was recorded"
    if record[0] != code_fingerprint():
        return "the staging code changed since staging was last built"
    return None


def build_args(warehouse: Path, log=print) -> list[str]:
    """Extra dbt arguments for an invocation that builds staging."""
    reason = full_refresh_reason(warehouse)
    if reason:
        log(f"staging: full refresh ({reason})")
        return ["--full-refresh"]
    return []


# Left out of a build whose staging is verified current: its models would select nothing
# new, and its data tests would re-check (≈ 12 s at today's size, ≈ 40 s at the target's)
# the rows they already passed on.
SKIP_STAGING = ["--exclude", *STAGING_PATHS]


def skip_args(warehouse: Path, log=print) -> list[str]:
    """SKIP_STAGING when staging is verified current (verified_current), else []."""
    since = verified_current(warehouse)
    if since is None:
        return []
    log(f"staging: current, tests passed on these files at {since}; not rebuilt")
    return list(SKIP_STAGING)


# Selected too by a build that does not leave staging out: all of staging, not only the
# models upstream of what it builds. Otherwise a settlement build merges new files into
# the staging models upstream of the settlement only, the others (buyers, groups) never
# catch up, and no later build finds staging verified current (`make demo`'s October
# build ran all of staging again).
ALL_OF_STAGING = ["--select", *STAGING_PATHS]


def invocation_args(warehouse: Path, log=print, skip_current: bool = True) -> list[str]:
    """What a dbt invocation whose selection includes staging adds: SKIP_STAGING when
    staging is verified current (and `skip_current`); else ALL_OF_STAGING, with
    `--full-refresh` when its code changed (build_args), else an incremental merge of the
    new files."""
    return (skip_current and skip_args(warehouse, log)) or [
        *ALL_OF_STAGING,
        *build_args(warehouse, log),
    ]


def _staged_files_digest(con) -> str | None:
    """One value for the set of file loads staging holds (staging.staged_files: model and
    the load's manifest identity, file_path, sha256, ingest_run_id) and the superseded
    loads it withdrew (staging.withdrawn_files), or None."""
    if not table_exists(con, "staging", "staged_files"):
        return None
    if "ingest_run_id" not in _columns(con, "staged_files"):
        return "a record by sha256 alone"  # written by older code: never verified current
    digest = con.execute(
        "select count(*) || ':' || coalesce(md5(string_agg(k, ',' order by k)), '') from"
        " (select model || ':' || file_path || ':' || sha256 || ':' || ingest_run_id as k"
        "  from staging.staged_files)"
    ).fetchone()[0]
    if table_exists(con, "staging", "withdrawn_files"):
        withdrawn = con.execute(
            "select count(*), md5(string_agg(k, ',' order by k)) from (select model || ':' ||"
            " file_path || ':' || sha256 || ':' || ingest_run_id as k from staging.withdrawn_files)"
        ).fetchone()
        if withdrawn[0]:  # (a warehouse without supersessions keeps its recorded digest)
            digest += f"|withdrawn {withdrawn[0]}:{withdrawn[1]}"
    return digest


def _consumers() -> str:
    """(model, export) of every model that records the files it consumed, as SQL VALUES."""
    pairs = [(f"stg_exports__{e}", e) for e in STAGING_MODELS]
    pairs += [(model, e) for model, exports in DAILY_MODELS.items() for e in exports]
    return ", ".join(f"('{model}', '{export}')" for model, export in pairs)


def _unstaged_files(con) -> int:
    """Loaded files that some staging or daily model has not merged yet, plus superseded
    loads (a landing file changed in place) whose withdrawal some of them has not handled
    yet (dbt_project/macros/staging.sql), counted once per model."""
    consumers = f"(values {_consumers()}) as c(model, export)"
    unstaged = con.execute(
        f"select count(*) from raw.manifest as m inner join {consumers} on c.export = m.export"
        " where m.status = 'loaded'"
        "  and not exists (select 1 from staging.staged_files as f"
        "                  where f.model = c.model and f.file_path = m.file_path"
        "                    and f.sha256 = m.sha256 and f.ingest_run_id = m.ingest_run_id)"
    ).fetchone()[0]
    handled = (
        "  and not exists (select 1 from staging.withdrawn_files as w"
        "                  where w.model = c.model"
        "                    and w.file_path = m.file_path and w.sha256 = m.sha256"
        "                    and w.ingest_run_id = m.ingest_run_id)"
        if table_exists(con, "staging", "withdrawn_files")
        else ""
    )
    return (
        unstaged
        + con.execute(
            f"select count(*) from raw.manifest as m inner join {consumers} on c.export = m.export"
            f" where m.status = 'superseded'{handled}"
        ).fetchone()[0]
    )


def _columns(con, table: str) -> set[str]:
    return {
        r[0]
        for r in con.execute(
            "select column_name from information_schema.columns"
            " where table_schema = 'staging' and table_name = ?",
            [table],
        ).fetchall()
    }


def _verified_through(con) -> datetime | None:
    """The stamp of the last build whose staging tests all passed (record_built), or None
    (no record, or one written before stamps were kept)."""
    if not table_exists(con, "staging", "staging_code"):
        return None
    if "verified_through" not in _columns(con, "staging_code"):
        return None
    row = con.execute("select verified_through from staging.staging_code").fetchone()
    return row[0] if row else None


def invocation_vars(warehouse: Path, args: list[str]) -> dict:
    """The dbt vars of an invocation with `args` (invocation_args' or stage's) that builds
    staging: `staging_stamp`, the stamp of the rows it writes (later than every recorded
    one), and `staging_verified_through`, the stamp its data tests read rows after
    (dbt_project/macros/staging_tests_window.sql; absent: every row). Nothing when staging
    is left out."""
    if args[: len(SKIP_STAGING)] == SKIP_STAGING:
        return {}
    with connect(warehouse) as con:
        through = _verified_through(con)
    stamp = datetime.now(UTC).replace(tzinfo=None)
    if through is not None and stamp <= through:  # a clock set back: stamps still grow
        stamp = through + timedelta(microseconds=1)
    out = {"staging_stamp": _stamp_text(stamp)}
    if through is not None and "--full-refresh" not in args:
        out["staging_verified_through"] = _stamp_text(through)
    return out


@dataclass(frozen=True)
class StagingBuild:
    """What one dbt invocation that includes staging adds, decided before it runs
    (plan_build): `args` (SKIP_STAGING, or ALL_OF_STAGING with `--full-refresh` when
    needed), `vars` (the rows' stamp and the tests' window, invocation_vars) and `code`,
    the staging code's fingerprint taken before anything was decided from it (a file
    edited while dbt runs makes the record differ from the code: the next build rebuilds)."""

    code: str
    args: list[str]
    vars: dict

    @property
    def skipped(self) -> bool:
        return self.args[: len(SKIP_STAGING)] == SKIP_STAGING

    @property
    def full_refresh(self) -> bool:
        return "--full-refresh" in self.args

    def record(self, warehouse: Path) -> None:
        """After the invocation succeeded: record_built with this plan's code and stamp."""
        record_built(warehouse, self.code, self.vars)


def plan_build(
    warehouse: Path, log=print, *, full_refresh: bool = False, verify_all: bool = False
) -> StagingBuild:
    """The staging part of a dbt invocation (the settle build, the marts build, stage()).
    `full_refresh`: rebuild all of staging whatever the record says. `verify_all`: build
    staging even when it is verified current, its data tests reading every row (the dbt var
    `staging_verify_all`), like the marts' `--verify-all`."""
    code = code_fingerprint()
    if full_refresh:
        args = ["--full-refresh", *ALL_OF_STAGING]
    else:
        args = invocation_args(warehouse, log, skip_current=not verify_all)
    dbt_vars = invocation_vars(warehouse, args)
    if verify_all and dbt_vars:
        dbt_vars["staging_verify_all"] = True
    return StagingBuild(code, args, dbt_vars)


def _stamp_text(t: datetime) -> str:
    return t.strftime("%Y-%m-%d %H:%M:%S.%f")


def _recorded(con) -> tuple[str, str | None] | None:
    """(fingerprint, verified_files) of staging.staging_code, or None when there is no
    record; verified_files is None in a record written before it was kept."""
    if not table_exists(con, "staging", "staging_code"):
        return None
    cols = _columns(con, "staging_code")
    verified = "verified_files" if "verified_files" in cols else "cast(null as varchar)"
    return con.execute(f"select fingerprint, {verified} from staging.staging_code").fetchone()


def verified_current(warehouse: Path) -> str | None:
    """When staging holds every loaded file, was built by this code, and its data tests
    passed on exactly these files (recorded by record_built after a successful build):
    when that was recorded. Otherwise None: the next build must build and test staging."""
    with connect(warehouse) as con:
        # (no check of staging's views: a build that does not leave staging out builds all
        # of it, views included (ALL_OF_STAGING), and a staging model's versions view is
        # its parent; a view holds no data its tests could have passed on)
        if not all(table_exists(con, "staging", f"stg_exports__{m}") for m in STAGING_MODELS):
            return None
        if not all(table_exists(con, "intermediate", m) for m in DAILY_MODELS):
            return None
        if not table_exists(con, "raw", "manifest"):
            return None
        record = _recorded(con)
        if record is None or record[0] != code_fingerprint() or record[1] is None:
            return None
        if record[1] != _staged_files_digest(con) or _unstaged_files(con) != 0:
            return None
        return str(con.execute("select recorded_at from staging.staging_code").fetchone()[0])


def record_built(warehouse: Path, built_code: str, dbt_vars: dict | None = None) -> None:
    """After a successful build that included staging and its data tests (or left a
    verified staging untouched): staging now holds what the code fingerprinted as
    `built_code` computes, and its tests passed on the files it holds. `built_code` is
    code_fingerprint() taken *before* the build: a file edited while dbt ran must not be
    recorded as built. `dbt_vars`: the build's invocation_vars(); its stamp is recorded as
    verified (every row written up to it passed its tests)."""
    stamp = (dbt_vars or {}).get("staging_stamp")
    with connect(warehouse) as con:
        digest = _staged_files_digest(con)
        if stamp is None and _recorded(con) == (built_code, digest):
            return  # nothing changed (e.g. a build that left staging out): keep the record's time
        through = stamp or _verified_through(con)
        con.execute("begin transaction")
        con.execute("create schema if not exists staging")
        # replaced, not altered: older warehouses have the table without the later columns
        con.execute(
            "create or replace table staging.staging_code (fingerprint varchar,"
            " verified_files varchar, recorded_at timestamp, verified_through timestamp)"
        )
        con.execute(
            "insert into staging.staging_code values (?, ?, current_timestamp, cast(? as timestamp))",
            [built_code, digest, None if through is None else str(through)],
        )
        con.execute("commit")


def stage(warehouse: Path, log=print) -> dict:
    """One dbt build of the staging models and their tests: merge newly loaded files.
    Holds the warehouse run lock (supernova.lock) meanwhile: a settlement in progress makes
    this fail clearly instead of changing staging under it."""
    from supernova import lock

    with lock.held(warehouse, "stage", log):
        return _stage(Path(warehouse), log)


def _stage(warehouse: Path, log) -> dict:
    from supernova.dbt_runner import dbt_invoke, failures

    build = plan_build(warehouse, log)
    if build.skipped:
        return {"seconds": 0.0, "full_refresh": False, "skipped": True}
    extra = ["--full-refresh"] if build.full_refresh else []
    t0 = time.perf_counter()
    # its own selection (the staging paths, unit tests left out), not the plan's
    res = dbt_invoke(warehouse, ["build", *STAGING_SELECT, *extra], build.vars)
    seconds = round(time.perf_counter() - t0, 1)
    if not res.success:
        problems = [f.line(400) for f in failures(res) if not f.skipped]
        raise StagingFailed(
            "staging build failed (see <warehouse>/dbt/logs/dbt.log):\n  "
            + "\n  ".join(problems or ["unknown dbt error"])
        )
    build.record(warehouse)
    log(f"staging: built in {seconds} s ({'full refresh' if extra else 'incremental'})")
    return {"seconds": seconds, "full_refresh": bool(extra)}
