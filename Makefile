# The README's two commands are `make demo` and `make test`. Both bootstrap everything
# they need from the package registry: uv (installed with pip when absent) and the
# locked environment in .venv (uv.lock).
PYTHON ?= python3
UV := $(shell command -v uv 2>/dev/null || echo "$(PYTHON) -m uv")

.PHONY: bootstrap demo test lint spark spark-cluster bench clean chromium

bootstrap:
	@command -v uv >/dev/null 2>&1 || $(PYTHON) -m uv --version >/dev/null 2>&1 || $(PYTHON) -m pip install --quiet uv
	@$(UV) sync --frozen --quiet

## The main job: generate demo exports (var/demo/landing), settle 2026-09 and 2026-10
## through the real Airflow DAG (monthly_settlement), refresh the marts, write October's
## statements and the BI catalog, all into var/demo/warehouse. One line per stage on the
## terminal, details in var/demo/warehouse/logs/ (VERBOSE=1 shows everything).
demo: bootstrap
	@$(UV) run --frozen supernova demo $(if $(VERBOSE),--verbose,)

## The test suite (what CI runs). The report tests drive Debian's headless Chromium and
## the deployment test (tests/deployment/) runs Airflow on Debian's PostgreSQL; both are
## installed here when missing and we are root (as on CI machines).
test: bootstrap chromium postgres lint
	@$(UV) run --frozen pytest -q --durations=25 -n 2 --no-loadscope-reorder

## PostgreSQL (Debian package) for the deployment test: the test starts its own server on
## a temporary data dir as an unprivileged user; nothing is started here.
.PHONY: postgres
postgres:
	@ls /usr/lib/postgresql/*/bin/pg_ctl >/dev/null 2>&1 || { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null && \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -q postgresql >/dev/null; } || \
	  echo "postgresql not installed: the deployment test will skip (it fails under CI)"

## Chromium and a CJK font (Noto Sans CJK, named in the report's font stack): the
## browser test checks that the report's Chinese text (僵死群) renders as glyphs, not boxes.
chromium:
	@{ test -x /usr/bin/chromium && fc-list :lang=zh 2>/dev/null | grep -q .; } || \
	  { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null && apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium fonts-noto-cjk >/dev/null; } || \
	  echo "chromium or fonts-noto-cjk not installed: the browser tests will skip (they fail under CI)"

## The habits CI keeps (also .pre-commit-config.yaml): ruff lint and format, sqlfluff on the
## dbt models (.sqlfluff: jinja templater with the project's macros, no warehouse needed).
lint: bootstrap
	@$(UV) run --frozen ruff check --quiet .
	@$(UV) run --frozen ruff format --check --quiet .
	@$(UV) run --frozen sqlfluff lint dbt_project/models --processes 2 --disable-progress-bar

## The optional Spark environment, in its own .venv-spark (`make test` syncs .venv with the
## default groups only, which would remove the spark group's packages again): docs/spark.md.
SPARK_ENV := UV_PROJECT_ENVIRONMENT=.venv-spark
spark: bootstrap java
	@$(SPARK_ENV) $(UV) sync --frozen --group spark --quiet

## Java 17 for PySpark (Debian's headless JRE), installed when missing and we are root.
.PHONY: java
java:
	@command -v java >/dev/null 2>&1 || { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null && \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -q openjdk-17-jre-headless >/dev/null; } || \
	  echo "java not installed: Spark needs Java 17 (openjdk-17-jre-headless)"

## Two months settled with `supernova settle --engine spark` on a local standalone Spark
## cluster (a master and two workers started and stopped by the test), compared with the
## DuckDB run to the fen. Not in `make test` (12-15 min on 2 cores): docs/spark.md.
spark-cluster: spark
	@$(SPARK_ENV) $(UV) run --frozen --group spark pytest -m spark tests/test_spark_cluster.py -s

clean:
	rm -rf var
