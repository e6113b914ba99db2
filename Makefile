# The README's two commands are `make demo` and `make test`. Both bootstrap everything
# they need from the package registry: uv (installed with pip when absent) and the
# locked environment in .venv (uv.lock).
PYTHON ?= python3
UV := $(shell command -v uv 2>/dev/null || echo "$(PYTHON) -m uv")

.PHONY: bootstrap demo test lint spark bench clean chromium

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
	@$(UV) run --frozen pytest -q

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

spark:
	@$(UV) sync --frozen --group spark --quiet

clean:
	rm -rf var
