#!/bin/sh
# The application's database login, created from the env file; no password is written here.
#
# The postgres image runs every file in /docker-entrypoint-initdb.d once, as its superuser
# ($POSTGRES_USER, who is also the schema owner `diplofeed migrate` connects as), when it
# initialises an empty data volume, and never again. This script creates:
#
#   diplofeed_app  NOLOGIN  the role migrations grant SELECT/INSERT on the event log (and the
#                           little else the API and projections need); migration 0001 creates
#                           it too, tolerating this one;
#   $API_DB_USER   LOGIN    (default diplofeed_api) with the password $API_DB_PASSWORD, a
#                           member of diplofeed_app; the api and projector connect as it and
#                           SET ROLE diplofeed_app (DIPLOFEED_DB_ROLE).
#
# It is idempotent: on an existing volume (or after changing API_DB_PASSWORD in .env) run
#   docker compose exec db sh /docker-entrypoint-initdb.d/10-diplofeed-roles.sh
#
# The password goes from the environment straight to psql (\getenv, psql 15 or newer) and is
# quoted by psql (:'...'), so it never appears on a command line or in this file.
# The image sources this file when it is not executable: no `set -u`, no `exit` on success.

if [ -z "${API_DB_PASSWORD:-}" ]; then
    echo "10-diplofeed-roles.sh: API_DB_PASSWORD is not set (copy .env.example to .env)" >&2
    exit 1
fi
API_DB_USER="${API_DB_USER:-diplofeed_api}"
export API_DB_USER

psql -v ON_ERROR_STOP=1 --no-psqlrc --quiet \
    --username "${POSTGRES_USER:-postgres}" --dbname "${POSTGRES_DB:-${POSTGRES_USER:-postgres}}" <<'SQL'
SET client_min_messages = warning;
\getenv api_user API_DB_USER
\getenv api_password API_DB_PASSWORD
SELECT 'CREATE ROLE diplofeed_app NOLOGIN'
WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'diplofeed_app') \gexec
SELECT format('CREATE ROLE %I LOGIN', :'api_user')
WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = :'api_user') \gexec
ALTER ROLE :"api_user" WITH LOGIN INHERIT NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION
    NOBYPASSRLS PASSWORD :'api_password';
GRANT diplofeed_app TO :"api_user";
SQL
