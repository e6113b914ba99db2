"""Refuse a bad settlement request at trigger time, in words: an Airflow API-server plugin.

Airflow validates each DAG param on its own, against its JSON schema, when a run is
triggered (`POST /api/v2/dags/monthly_settlement/dagRuns`, which the UI's trigger form
uses too). That refuses wrong types with HTTP 400, but it cannot refuse an unknown key
(a misspelt `Month` is kept as an extra value and the run falls back to the default
month), nor a combination (`preview` together with `reopen_reason`), and its messages
quote regular expressions. This root middleware of the API server reads the trigger's
`conf` first and answers HTTP 400 with the problems in words
(supernova.run_request.request_problems, the same check the DAG's `begin` task makes)
before Airflow creates the run.

Installed by putting the project's `plugins/` folder on the API server's plugins path
(`AIRFLOW__CORE__PLUGINS_FOLDER=<project>/plugins`; plugins/supernova_trigger_guard.py
imports the plugin class from here). Without it, `begin` refuses the same requests
within seconds, before anything is read or written.
"""

from __future__ import annotations

import json
import re

from airflow.plugins_manager import AirflowPlugin

SETTLEMENT_TRIGGER = re.compile(r"/api/v2/dags/monthly_settlement/dagRuns/?$")


def trigger_problems(body: bytes) -> list[str]:
    """The problems of a trigger request body for monthly_settlement (empty: fine)."""
    from supernova.run_request import request_problems

    try:
        payload = json.loads(body or b"{}")
    except ValueError:
        return []  # not JSON: Airflow's own validation answers
    if not isinstance(payload, dict):
        return []
    conf = payload.get("conf")
    if conf is None:
        return []
    # month may be empty at trigger time: then it is the month before the run date
    return request_problems(conf, month_required=False)


class SettlementTriggerGuard:
    """Pure ASGI middleware: reads the body of a monthly_settlement trigger, answers 400
    when the conf is refused, otherwise passes the request on unchanged."""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if (
            scope.get("type") != "http"
            or scope.get("method") != "POST"
            or not SETTLEMENT_TRIGGER.search(scope.get("path", ""))
        ):
            await self.app(scope, receive, send)
            return
        received, body, more = [], b"", True
        while more:
            message = await receive()
            received.append(message)
            if message["type"] != "http.request":
                break
            body += message.get("body", b"")
            more = message.get("more_body", False)
        problems = trigger_problems(body)
        if problems:
            detail = "monthly_settlement refused: " + "; ".join(problems)
            payload = json.dumps({"detail": detail}, ensure_ascii=False).encode("utf-8")
            await send(
                {
                    "type": "http.response.start",
                    "status": 400,
                    "headers": [
                        (b"content-type", b"application/json"),
                        (b"content-length", str(len(payload)).encode()),
                    ],
                }
            )
            await send({"type": "http.response.body", "body": payload})
            return

        async def replay():
            if received:
                return received.pop(0)
            return await receive()

        await self.app(scope, replay, send)


class SupernovaTriggerGuardPlugin(AirflowPlugin):
    name = "supernova_trigger_guard"
    fastapi_root_middlewares = [
        {
            "middleware": SettlementTriggerGuard,
            "args": [],
            "kwargs": {},
            "name": "supernova settlement trigger guard",
        },
    ]
