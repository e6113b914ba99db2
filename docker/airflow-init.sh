#!/usr/bin/env bash
# One-shot initialisation of the Airflow metadata DB (docker-compose service airflow-init):
# migrate the schema, give the admin user its password (simple auth manager; the password
# comes from the env file, never from this repository), create the 1-slot pool that every
# task touching the warehouse DuckDB file uses, and prepare the warehouse folders.
set -euo pipefail
: "${AIRFLOW_ADMIN_USER:?set AIRFLOW_ADMIN_USER in .env}"
: "${AIRFLOW_ADMIN_PASSWORD:?set AIRFLOW_ADMIN_PASSWORD in .env}"
: "${AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE:?}"

airflow db migrate

umask 077
python - <<'PY'
import json, os
path = os.environ["AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE"]
os.makedirs(os.path.dirname(path), exist_ok=True)
with open(path, "w") as f:
    json.dump({os.environ["AIRFLOW_ADMIN_USER"]: os.environ["AIRFLOW_ADMIN_PASSWORD"]}, f)
PY

airflow pools set supernova_warehouse 1 "The warehouse DuckDB file: one process at a time"
# the folders Metabase mounts read-only (bi/, parquet/), created by the airflow user
mkdir -p "${SUPERNOVA_WAREHOUSE:?}/bi" "${SUPERNOVA_WAREHOUSE:?}/parquet/marts" "${SUPERNOVA_LANDING:?}"
echo "airflow-init: done"
