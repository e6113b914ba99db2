#!/bin/sh
# One-shot Metabase setup (docker-compose service metabase-setup): create the admin user
# from the env file and register the warehouse as a read-only DuckDB database. Metabase opens
# the BI catalog bi/supernova_bi.duckdb (views over the settlement and marts Parquet copies,
# rewritten by the pipeline after every publish and marts refresh; supernova/serving.py)
# read-only, so it never touches the working file supernova.duckdb.
set -eu
: "${MB_ADMIN_EMAIL:?set MB_ADMIN_EMAIL in .env}"
: "${MB_ADMIN_PASSWORD:?set MB_ADMIN_PASSWORD in .env}"
MB=http://metabase:3000

until curl -fsS "$MB/api/health" >/dev/null; do sleep 5; done
TOKEN=$(curl -fsS "$MB/api/session/properties" | sed -n 's/.*"setup-token":"\([^"]*\)".*/\1/p')
if [ -z "$TOKEN" ]; then echo "metabase-setup: already set up"; exit 0; fi

curl -fsS -X POST "$MB/api/setup" -H 'Content-Type: application/json' -d "{
  \"token\": \"$TOKEN\",
  \"user\": {\"email\": \"$MB_ADMIN_EMAIL\", \"password\": \"$MB_ADMIN_PASSWORD\",
           \"first_name\": \"Supernova\", \"last_name\": \"Admin\", \"site_name\": \"Supernova\"},
  \"prefs\": {\"site_name\": \"Supernova\", \"allow_tracking\": false},
  \"database\": {\"engine\": \"duckdb\", \"name\": \"Supernova\",
               \"details\": {\"database_file\": \"/warehouse/bi/supernova_bi.duckdb\",
                           \"read_only\": true}}
}" >/dev/null
echo "metabase-setup: admin user and the 'Supernova' database created"
