"""The data-quality gate on Spark: the same Great Expectations suites as the DuckDB gate
(expectations/*.json, loaded by supernova.gate.load_suite) over the month's candidate
tables in the Spark catalog (`settlement_build.*`), through GX's Spark datasource, and the
`settlement_checks` invariants read with Spark SQL, every one required to report 0
violations. Fail-closed: the result has the shape of supernova.gate.run_gate's, and
supernova.spark_publish publishes only when `ok`.

Unlike the DuckDB gate, nothing is fetched into Python: GX evaluates each expectation as a
Spark job on the executors, and DECIMAL stays DECIMAL (no float conversion), so no chunking
is needed; the whole table is one batch.
"""

from __future__ import annotations

from supernova import gate

INVARIANT_COLUMNS = "check_name, description, violations, cast(examples as string) as examples"


def validate_tables(spark, month: str) -> list[dict]:
    """Each suite of gate.SUITES over its settlement_build table; one result per expectation."""
    gx = gate._import_gx()
    from great_expectations.data_context.types.base import ProgressBarsConfig

    ctx = gx.get_context(mode="ephemeral")
    ctx.variables.progress_bars = ProgressBarsConfig(globally=False, metric_calculations=False)
    # persist=False: GX would otherwise cache each table on the executors for the checks
    source = ctx.data_sources.add_spark("supernova_spark", persist=False)
    results = []
    for suite_name, table in gate.SUITES.items():
        asset = source.add_dataframe_asset(name=suite_name)
        batch_def = asset.add_batch_definition_whole_dataframe(f"{suite_name}_all")
        suite = ctx.suites.add(gx.ExpectationSuite(**gate.load_suite(suite_name, month)))
        vd = ctx.validation_definitions.add(
            gx.ValidationDefinition(name=f"{suite_name}_validation", data=batch_def, suite=suite)
        )
        frame = spark.table(f"settlement_build.{table}")
        res = vd.run(batch_parameters={"dataframe": frame})
        results.extend(gate._result(suite_name, r) for r in res.results)
    return results


def invariants(spark) -> list[dict]:
    """settlement_build.settlement_checks, evaluated by Spark SQL (one row per check)."""
    rows = spark.sql(
        f"select {INVARIANT_COLUMNS} from settlement_build.settlement_checks order by check_name"
    ).collect()
    return [r.asDict() for r in rows]


def failed_invariants(checks: list[dict]) -> list[dict]:
    """The checks with violations (or none recorded), each with finance's way out."""
    return [
        {
            "check": c["check_name"],
            "description": c["description"],
            "violations": c["violations"],
            "examples": c["examples"],
            "what_to_do": gate.what_to_do(c["check_name"]),
        }
        for c in checks
        if c["violations"] is None or int(c["violations"]) != 0
    ]


def run_gate(spark, month: str) -> dict:
    """Validate the candidate tables in the Spark catalog. Never publishes anything."""
    results = validate_tables(spark, month)
    checks = invariants(spark)
    failed = failed_invariants(checks)
    for r in results:
        if not r["success"]:
            r["what_to_do"] = gate.expectation_what_to_do(r["suite"])
    ok = bool(results) and bool(checks) and all(r["success"] for r in results) and not failed
    return {
        "ok": ok,
        "results": results,
        "failed_checks": failed,
        "what_to_do": None if ok else gate.NOTHING_PUBLISHED,
        "checks_passed": sum(r["success"] for r in results),
        "checks_failed": sum(not r["success"] for r in results),
        "invariants": [
            {
                "check": c["check_name"],
                "violations": None if c["violations"] is None else int(c["violations"]),
            }
            for c in checks
        ],
    }
