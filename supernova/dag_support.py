"""What the three DAG files share: the warehouse pool and assets, default arguments, the
failure callback, the wait for the warehouse lease, the run's triggering user and the
settlement schedule. Lives in the package, not in dags/, because the dag-processor
parses every .py file under dags/ as a DAG file.

Failure announcements (`announce_failure`, the `on_failure_callback` of every task of
every project DAG): each failure is
- logged in the task log, and written as a note under `<warehouse>/alerts/` (the
  settlement's own run report, written by its `finish` teardown, also names it);
- posted as JSON to `SUPERNOVA_ALERT_WEBHOOK` when that is set (an https/http URL, e.g. a
  chat webhook; body `{"text": ..., "dag_id", "run_id", "task_id", "error", "note"}`);
- mailed to `SUPERNOVA_ALERT_EMAIL` (comma-separated) through the SMTP server
  `SUPERNOVA_SMTP_HOST` (port `SUPERNOVA_SMTP_PORT`, default 25; sender
  `SUPERNOVA_ALERT_FROM`, default supernova@<host>) when both are set.
An announcement that cannot be delivered is logged; it never hides the failure itself.
"""

from __future__ import annotations

import json
import os
import re
import socket
import urllib.request
from datetime import datetime, timedelta
from pathlib import Path

from supernova import lock, settings

POOL = "supernova_warehouse"  # 1 slot: the DuckDB file admits one writing process
RAW_ASSET_URI = "supernova://warehouse/raw"
MARTS_ASSET_URI = "supernova://warehouse/marts"
WEBHOOK_ENV = "SUPERNOVA_ALERT_WEBHOOK"
EMAIL_ENV = "SUPERNOVA_ALERT_EMAIL"
SMTP_HOST_ENV = "SUPERNOVA_SMTP_HOST"
SMTP_PORT_ENV = "SUPERNOVA_SMTP_PORT"
ALERT_FROM_ENV = "SUPERNOVA_ALERT_FROM"
IN_PROCESS_ENV = "SUPERNOVA_IN_PROCESS_RUN"  # set by supernova.airflow_runner.run_dag
WAIT_POKE_SECONDS = 60
WAIT_TIMEOUT_SECONDS = 6 * 3600


def raw_asset():
    from airflow.sdk import Asset

    return Asset(RAW_ASSET_URI)


def marts_asset():
    from airflow.sdk import Asset

    return Asset(MARTS_ASSET_URI)


def default_args(retries: int = 0) -> dict:
    """Every task: in the warehouse pool, announced when it fails. `retries`: for the
    writers that may meet a settlement's lease taken between their wait and their step
    (lock.WarehouseBusy is retried; every other failure is raised as AirflowFailException,
    which is never retried)."""
    return {
        "retries": retries,
        "retry_delay": timedelta(minutes=5),
        "pool": POOL,
        "on_failure_callback": announce_failure,
    }


def retry_only_when_busy(fn, *args, **kwargs):
    """Run a writer's step: lock.WarehouseBusy (a settlement took the warehouse after the
    wait) is raised as is, for the task's retries; any other failure fails the task for
    good (AirflowFailException), since retrying a bad file or a dbt error changes nothing."""
    from airflow.sdk.exceptions import AirflowException, AirflowFailException

    try:
        return fn(*args, **kwargs)
    except (lock.WarehouseBusy, AirflowException):
        raise
    except Exception as exc:
        raise AirflowFailException(f"{type(exc).__name__}: {exc}") from exc


# ---------------------------------------------------------------- who started the run


def in_process_run() -> bool:
    """True when the whole DAG run executes in this process (`supernova settle`)."""
    return os.environ.get(IN_PROCESS_ENV) == "1"


def _run_type(context) -> str:
    return str(getattr(context["dag_run"], "run_type", "") or "").lower().split(".")[-1]


def is_scheduled(context) -> bool:
    """Started by the schedule (or a backfill of it), not by a person."""
    return _run_type(context) in ("scheduled", "backfill")


def triggering_user(context) -> str:
    """Who started the run: the Airflow user who triggered it (UI, REST API), `scheduler`
    for scheduled and asset-triggered runs, the OS user for `supernova settle` (which
    runs the DAG in process through `dag.test()`)."""
    if is_scheduled(context):
        return "scheduler"
    if _run_type(context) == "asset_triggered":
        return "scheduler (asset update)"
    name = getattr(context["dag_run"], "triggering_user_name", None)
    if not name or name == "dag_test":
        from supernova.run_request import os_user

        return os_user()
    return str(name)


# ---------------------------------------------------------------- the schedule


def settlement_schedule() -> str:
    """02:00 on the cutoff day (vars.supernova.cutoff_day), Asia/Shanghai: right after the
    previous month's cutoff. Read once when the DAG file is parsed."""
    from supernova.months import settlement_config

    return f"0 2 {settlement_config()['cutoff_day']} * *"


# ---------------------------------------------------------------- waiting for the lease


def warehouse_free(warehouse: Path | str, log=print) -> bool:
    """One poke of the wait: True when no live lease holds the warehouse; otherwise says
    what it waits for."""
    holder = lock.active_lease(Path(warehouse))
    if holder is None:
        return True
    log(f"waiting for the warehouse {warehouse}: held by {holder.describe()}")
    return False


def wait_for_warehouse_task():
    """A sensor for the start of a writing DAG: waits, without holding a worker slot
    (reschedule mode) or a pool slot, until no settlement (or other writer) holds the
    warehouse lease; logs which run it waits for and since when."""
    from airflow.sdk import task

    @task.sensor(
        task_id="wait_for_warehouse",
        mode="reschedule",
        poke_interval=WAIT_POKE_SECONDS,
        timeout=WAIT_TIMEOUT_SECONDS,
        pool="default_pool",
        retries=0,
        on_failure_callback=announce_failure,
    )
    def wait_for_warehouse(params=None) -> bool:
        return warehouse_free(resolve_warehouse(params))

    return wait_for_warehouse


def path_params() -> dict:
    """The `landing` and `warehouse` Params every DAG takes (defaults: supernova.settings)."""
    from airflow.sdk import Param

    return {
        "landing": Param(
            str(settings.default_landing()),
            type="string",
            minLength=1,
            description="landing directory: <export>/<YYYY-MM-DD>/<files>",
        ),
        "warehouse": Param(
            str(settings.default_warehouse()),
            type="string",
            minLength=1,
            description="warehouse directory (supernova.duckdb, raw/, parquet/)",
        ),
    }


def resolve_warehouse(params) -> Path:
    return (
        Path((params or {}).get("warehouse") or settings.default_warehouse()).expanduser().resolve()
    )


# ---------------------------------------------------------------- failures


def failure_text(context) -> dict:
    ti = context.get("ti") or context.get("task_instance")
    dag_run = context.get("dag_run")
    exc = context.get("exception")
    dag_id = getattr(ti, "dag_id", None) or getattr(dag_run, "dag_id", "?")
    run_id = getattr(ti, "run_id", None) or getattr(dag_run, "run_id", "?")
    task_id = getattr(ti, "task_id", "?")
    error = str(exc) if exc is not None else str(context.get("reason") or "failed")
    params = context.get("params") or {}
    what = (
        f" for {params['month']}" if dag_id == "monthly_settlement" and params.get("month") else ""
    )
    text = (
        f"FAILED: {dag_id}{what}, run {run_id}, task {task_id} "
        f"(try {getattr(ti, 'try_number', '?')}) on {socket.gethostname()}: {error[:2000]}"
    )
    return {"text": text, "dag_id": dag_id, "run_id": run_id, "task_id": task_id, "error": error}


def write_alert_note(warehouse: Path, alert: dict) -> Path:
    alerts = Path(warehouse) / "alerts"
    alerts.mkdir(parents=True, exist_ok=True)
    safe = re.sub(
        r"[^0-9A-Za-z_.-]+", "_", f"{alert['dag_id']}-{alert['run_id']}-{alert['task_id']}"
    )
    note = alerts / f"{datetime.now():%Y%m%dT%H%M%S}-{safe}.md"
    note.write_text(
        f"# {alert['dag_id']} failed\n\n- run: `{alert['run_id']}`\n- task: `{alert['task_id']}`\n"
        f"- at: {datetime.now().astimezone().isoformat(timespec='seconds')}\n\n"
        f"```\n{alert['error']}\n```\n",
        encoding="utf-8",
    )
    return note


def post_webhook(url: str, payload: dict, timeout: float = 10.0) -> int:
    req = urllib.request.Request(
        url,
        data=json.dumps(payload, ensure_ascii=False).encode("utf-8"),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(req, timeout=timeout) as resp:  # noqa: S310 (operator's URL)
        return resp.status


def send_email(to: str, payload: dict) -> None:
    import smtplib
    from email.message import EmailMessage

    msg = EmailMessage()
    msg["Subject"] = payload["text"][:150]
    msg["From"] = os.environ.get(ALERT_FROM_ENV) or f"supernova@{socket.gethostname()}"
    msg["To"] = to
    msg.set_content(
        payload["text"] + (f"\n\nnote: {payload['note']}" if payload.get("note") else "")
    )
    with smtplib.SMTP(
        os.environ[SMTP_HOST_ENV], int(os.environ.get(SMTP_PORT_ENV) or 25), timeout=15
    ) as smtp:
        smtp.send_message(msg)


def announce_failure(context, log=print) -> dict:
    """The failure callback of every project task: log, note, and webhook/email when
    configured (see the module docstring). Returns what it did (for tests)."""
    alert = failure_text(context)
    log(alert["text"])
    done = {"text": alert["text"]}
    try:
        alert["note"] = str(write_alert_note(resolve_warehouse(context.get("params")), alert))
        done["note"] = alert["note"]
    except OSError as exc:
        log(f"could not write the failure note: {exc}")
    url = os.environ.get(WEBHOOK_ENV, "").strip()
    if url:
        try:
            done["webhook"] = post_webhook(url, alert)
        except Exception as exc:
            log(f"could not post the failure to {WEBHOOK_ENV}: {exc}")
    to = os.environ.get(EMAIL_ENV, "").strip()
    if to and os.environ.get(SMTP_HOST_ENV):
        try:
            send_email(to, alert)
            done["email"] = to
        except Exception as exc:
            log(f"could not mail the failure to {to}: {exc}")
    return done
