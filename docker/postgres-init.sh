#!/usr/bin/env bash
# Creates the three databases of the compose stack on the first start of the postgres service
# (the official image runs /docker-entrypoint-initdb.d/*.sh only when its data volume is empty):
#
#   database prefect, owned by PREFECT_DB_USER (password PREFECT_DB_PASSWORD)
#   database mlflow,  owned by MLFLOW_DB_USER  (password MLFLOW_DB_PASSWORD)
#   database optuna,  owned by OPTUNA_DB_USER  (password OPTUNA_DB_PASSWORD): mynn tune's studies
#
# Each user can connect to its own database only. Values come from .env through
# docker-compose.yml; nothing here has a default password. Changing them in .env later does
# not change an existing volume: use ALTER ROLE ... PASSWORD, or start over with
# `docker compose down -v` (which deletes all data).
#
# The image may run this file or source it, so it uses no `set -u` and no `exit` on success.
set -e

for var in PREFECT_DB_USER PREFECT_DB_PASSWORD MLFLOW_DB_USER MLFLOW_DB_PASSWORD OPTUNA_DB_USER OPTUNA_DB_PASSWORD; do
    if [ -z "${!var:-}" ]; then
        echo "postgres-init: $var is not set (set it in .env)" >&2
        exit 1
    fi
done
# The passwords go into connection URLs in docker-compose.yml, unescaped: refuse characters
# that would need percent-encoding there rather than fail later with a confusing error.
for var in PREFECT_DB_PASSWORD MLFLOW_DB_PASSWORD OPTUNA_DB_PASSWORD PREFECT_DB_USER MLFLOW_DB_USER OPTUNA_DB_USER; do
    if [[ ! "${!var}" =~ ^[A-Za-z0-9._~-]+$ ]]; then
        echo "postgres-init: $var may hold only letters, digits and . _ ~ - (it is used in a URL)" >&2
        exit 1
    fi
done
if [ "$PREFECT_DB_USER" = "$MLFLOW_DB_USER" ] || [ "$OPTUNA_DB_USER" = "$PREFECT_DB_USER" ] \
   || [ "$OPTUNA_DB_USER" = "$MLFLOW_DB_USER" ]; then
    echo "postgres-init: PREFECT_DB_USER, MLFLOW_DB_USER and OPTUNA_DB_USER must differ" >&2
    exit 1
fi

# psql variables (:"name" quotes an identifier, :'name' a literal): no value is spliced into SQL.
psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname "${POSTGRES_DB:-$POSTGRES_USER}" \
     -v prefect_user="$PREFECT_DB_USER" -v prefect_password="$PREFECT_DB_PASSWORD" \
     -v mlflow_user="$MLFLOW_DB_USER" -v mlflow_password="$MLFLOW_DB_PASSWORD" \
     -v optuna_user="$OPTUNA_DB_USER" -v optuna_password="$OPTUNA_DB_PASSWORD" <<'SQL'
CREATE ROLE :"prefect_user" LOGIN PASSWORD :'prefect_password';
CREATE ROLE :"mlflow_user" LOGIN PASSWORD :'mlflow_password';
CREATE ROLE :"optuna_user" LOGIN PASSWORD :'optuna_password';
CREATE DATABASE prefect OWNER :"prefect_user";
CREATE DATABASE mlflow OWNER :"mlflow_user";
CREATE DATABASE optuna OWNER :"optuna_user";
REVOKE ALL ON DATABASE prefect FROM PUBLIC;
REVOKE ALL ON DATABASE mlflow FROM PUBLIC;
REVOKE ALL ON DATABASE optuna FROM PUBLIC;
GRANT ALL ON DATABASE prefect TO :"prefect_user";
GRANT ALL ON DATABASE mlflow TO :"mlflow_user";
GRANT ALL ON DATABASE optuna TO :"optuna_user";
\connect prefect
-- Prefect's migrations create it too; doing it here needs no extra privilege for its user.
CREATE EXTENSION IF NOT EXISTS pg_trgm;
SQL
echo "postgres-init: created databases prefect (user $PREFECT_DB_USER), mlflow (user $MLFLOW_DB_USER) and optuna (user $OPTUNA_DB_USER)"
