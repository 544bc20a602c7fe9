#!/usr/bin/env bash
# Prepare an InfluxDB 1.x server for klankkast (1.6 or later; 1.11 in compose):
#
#   - the database (default "klankkast")
#   - the retention policies of the layout (klankkast/influx.py RETENTION_POLICIES;
#     which measurement goes where: MEASUREMENTS there, and the table in
#     docs/privacy.md, which a test compares with what this script creates):
#     "raw" (30d, the DEFAULT policy: second, status, node_health, ingest_stats),
#     "forever" (INF unless INFLUX_FOREVER_DURATION: minute, complaint, visit,
#     episode, alert, analysis) and "experience" (365d: residents' marks)
#   - a write user for the ingest (WRITE + READ on the database: the ingest's
#     `check` reads back, and the analysis import writes the same database)
#   - a read-only user for Grafana
#
# Idempotent: every statement may run again (CREATE ... is a no-op when the
# object exists; ALTER re-applies the durations; SET PASSWORD re-applies the
# password). Talks to the HTTP API with curl, so it works against a remote
# server, a container, or the `influx` CLI-less Debian package alike.
#
# Environment (all optional except the passwords of the users you want created):
#   INFLUX_URL              http://127.0.0.1:8086
#   INFLUX_DB               klankkast
#   INFLUX_RAW_DURATION     30d     (InfluxQL duration, >= 1h)
#   INFLUX_SHARD_RAW        1d      (shard group duration of "raw")
#   INFLUX_SHARD_FOREVER    52w     (shard group duration of "forever")
#   INFLUX_FOREVER_DURATION INF     (the municipality's term for "forever", e.g. 104w;
#                           >= INFLUX_SHARD_FOREVER; then update docs/privacy.md)
#   INFLUX_ADMIN_USER       admin account to authenticate with (auth enabled)
#   INFLUX_ADMIN_PASSWORD   its password (or INFLUX_ADMIN_PASSWORD_FILE)
#   INFLUX_CREATE_ADMIN=1   create that admin first (a fresh server with auth on
#                           accepts exactly one unauthenticated CREATE USER ... WITH
#                           ALL PRIVILEGES)
#   INFLUX_INGEST_USER      klankkast_ingest
#   INFLUX_INGEST_PASSWORD  (or INFLUX_INGEST_PASSWORD_FILE); user skipped if unset
#   INFLUX_GRAFANA_USER     klankkast_grafana
#   INFLUX_GRAFANA_PASSWORD (or INFLUX_GRAFANA_PASSWORD_FILE); user skipped if unset
#   INFLUX_EXPERIENCE_DURATION 365d (retention policy "experience": residents' marks)
#   INFLUX_COURTYARD_READ_USER    courtyard_read   (READ only: the residents' page)
#   INFLUX_COURTYARD_READ_PASSWORD  (or ..._FILE); user skipped if unset
#   INFLUX_COURTYARD_WRITE_USER   courtyard_write  (WRITE only: the residents' marks)
#   INFLUX_COURTYARD_WRITE_PASSWORD (or ..._FILE); user skipped if unset
#   INFLUX_ANALYSIS_USER    klankkast_analysis (the scheduled analysis: reads levels,
#                           writes complaint/visit/episode/analysis/limit points;
#                           InfluxDB 1.x grants per database only, so ALL on it =
#                           read and write, never admin rights)
#   INFLUX_ANALYSIS_PASSWORD (or ..._FILE); user skipped if unset
#
# Usage:
#   INFLUX_ADMIN_USER=admin INFLUX_ADMIN_PASSWORD_FILE=/etc/klankkast/influx-admin \
#   INFLUX_INGEST_PASSWORD_FILE=/etc/klankkast/influx-ingest \
#   INFLUX_GRAFANA_PASSWORD_FILE=/etc/klankkast/influx-grafana \
#       deploy/influxdb/setup.sh
#
# Exit status 0 on success; 1 with one line naming what failed otherwise.
set -euo pipefail

url=${INFLUX_URL:-http://127.0.0.1:8086}
db=${INFLUX_DB:-klankkast}
raw=${INFLUX_RAW_DURATION:-30d}
shard_raw=${INFLUX_SHARD_RAW:-1d}
shard_forever=${INFLUX_SHARD_FOREVER:-52w}
forever=${INFLUX_FOREVER_DURATION:-INF}
ingest_user=${INFLUX_INGEST_USER:-klankkast_ingest}
grafana_user=${INFLUX_GRAFANA_USER:-klankkast_grafana}
experience=${INFLUX_EXPERIENCE_DURATION:-365d}
cy_read_user=${INFLUX_COURTYARD_READ_USER:-courtyard_read}
cy_write_user=${INFLUX_COURTYARD_WRITE_USER:-courtyard_write}
analysis_user=${INFLUX_ANALYSIS_USER:-klankkast_analysis}

die() {
    echo "setup.sh: $*" >&2
    exit 1
}

# secret VAR: the value of $VAR, or the first line of the file named by $VAR_FILE
secret() {
    local name=$1 file_var="${1}_FILE"
    if [[ -n ${!name:-} ]]; then
        printf '%s' "${!name}"
    elif [[ -n ${!file_var:-} ]]; then
        [[ -r ${!file_var} ]] || die "${file_var}=${!file_var} is not a readable file"
        head -n1 "${!file_var}" | tr -d '\r\n'
    fi
}

ident_re='^[A-Za-z0-9_][A-Za-z0-9_.-]{0,63}$'
for pair in "INFLUX_DB=$db" "INFLUX_INGEST_USER=$ingest_user" "INFLUX_GRAFANA_USER=$grafana_user" \
    "INFLUX_COURTYARD_READ_USER=$cy_read_user" "INFLUX_COURTYARD_WRITE_USER=$cy_write_user" \
    "INFLUX_ANALYSIS_USER=$analysis_user"; do
    [[ ${pair#*=} =~ $ident_re ]] || die "${pair%%=*} must be 1-64 of [A-Za-z0-9_.-]; got '${pair#*=}'"
done
dur_re='^[0-9]+(h|d|w)$'
for pair in "INFLUX_RAW_DURATION=$raw" "INFLUX_SHARD_RAW=$shard_raw" "INFLUX_SHARD_FOREVER=$shard_forever" \
    "INFLUX_EXPERIENCE_DURATION=$experience"; do
    [[ ${pair#*=} =~ $dur_re ]] || die "${pair%%=*} must be an InfluxQL duration like 30d, 12h or 52w; got '${pair#*=}'"
done
[[ $forever == INF || $forever =~ $dur_re ]] ||
    die "INFLUX_FOREVER_DURATION must be INF or an InfluxQL duration like 104w; got '$forever'"

admin_user=${INFLUX_ADMIN_USER:-}
admin_password=$(secret INFLUX_ADMIN_PASSWORD)
ingest_password=$(secret INFLUX_INGEST_PASSWORD)
grafana_password=$(secret INFLUX_GRAFANA_PASSWORD)
cy_read_password=$(secret INFLUX_COURTYARD_READ_PASSWORD)
cy_write_password=$(secret INFLUX_COURTYARD_WRITE_PASSWORD)
analysis_password=$(secret INFLUX_ANALYSIS_PASSWORD)

# InfluxQL string literal: backslash and single quote escaped
quote() {
    local s=${1//\\/\\\\}
    printf "'%s'" "${s//\'/\\\'}"
}

# q STATEMENT: POST one statement to /query; on an HTTP or InfluxQL error print
# why on stderr (unless QUIET=1) and return 1
q() {
    local auth=() body status msg
    if [[ -n $admin_user ]]; then
        auth=(-u "$admin_user:$admin_password")
    fi
    body=$(mktemp)
    if ! status=$(curl -sS -o "$body" -w '%{http_code}' "${auth[@]}" -XPOST "$url/query" \
        --data-urlencode "q=$1"); then
        rm -f "$body"
        echo "setup.sh: cannot reach InfluxDB at $url" >&2
        return 1
    fi
    if [[ $status != 200 ]] || grep -q '"error"' "$body"; then
        msg=$(tr -d '\n' <"$body" | cut -c1-300)
        rm -f "$body"
        if [[ ${QUIET:-0} != 1 ]]; then
            # never echo a statement that carries a password
            case $1 in
            *PASSWORD*) echo "setup.sh: statement on users failed: HTTP $status $msg" >&2 ;;
            *) echo "setup.sh: '$1' failed: HTTP $status $msg" >&2 ;;
            esac
        fi
        return 1
    fi
    rm -f "$body"
}

curl -sS -o /dev/null --max-time 5 "$url/ping" || die "cannot reach InfluxDB at $url/ping"

if [[ ${INFLUX_CREATE_ADMIN:-0} == 1 ]]; then
    [[ -n $admin_user && -n $admin_password ]] ||
        die "INFLUX_CREATE_ADMIN=1 needs INFLUX_ADMIN_USER and INFLUX_ADMIN_PASSWORD(_FILE)"
    # the first admin may be created without credentials; later runs authenticate
    if ! QUIET=1 q "SHOW USERS"; then
        saved=$admin_user
        admin_user=""
        q "CREATE USER \"$saved\" WITH PASSWORD $(quote "$admin_password") WITH ALL PRIVILEGES" ||
            die "cannot create admin user $saved"
        admin_user=$saved
    fi
fi

# A new database gets "raw" as its first policy, so InfluxDB makes no "autogen" (an
# INF policy outside the layout); an existing database is left as it is.
if ! QUIET=1 q "SHOW RETENTION POLICIES ON \"$db\""; then
    q "CREATE DATABASE \"$db\" WITH DURATION $raw REPLICATION 1 SHARD DURATION $shard_raw NAME \"raw\"" ||
        die "cannot create database $db"
fi
QUIET=1 q "CREATE RETENTION POLICY \"raw\" ON \"$db\" DURATION $raw REPLICATION 1 SHARD DURATION $shard_raw DEFAULT" ||
    q "ALTER RETENTION POLICY \"raw\" ON \"$db\" DURATION $raw SHARD DURATION $shard_raw DEFAULT" ||
    die "cannot create retention policy raw on $db"
QUIET=1 q "CREATE RETENTION POLICY \"forever\" ON \"$db\" DURATION $forever REPLICATION 1 SHARD DURATION $shard_forever" ||
    q "ALTER RETENTION POLICY \"forever\" ON \"$db\" DURATION $forever SHARD DURATION $shard_forever" ||
    die "cannot create retention policy forever on $db"
QUIET=1 q "CREATE RETENTION POLICY \"experience\" ON \"$db\" DURATION $experience REPLICATION 1" ||
    q "ALTER RETENTION POLICY \"experience\" ON \"$db\" DURATION $experience" ||
    die "cannot create retention policy experience on $db"
echo "setup.sh: database $db with retention policies raw ($raw, default), forever ($forever) and experience ($experience)"

# user NAME PASSWORD PRIVILEGE WHAT: create (or re-password) a user with exactly PRIVILEGE
# (READ, WRITE or ALL = read and write) on the database, never admin rights; a user
# whose password is not given is skipped. A GRANT replaces the earlier one, so the
# REVOKE first makes a re-run take away what a changed script no longer grants.
user() {
    local name=$1 password=$2 privilege=$3 what=$4
    [[ -n $password ]] || return 0
    QUIET=1 q "CREATE USER \"$name\" WITH PASSWORD $(quote "$password")" ||
        q "SET PASSWORD FOR \"$name\" = $(quote "$password")" ||
        die "cannot create user $name"
    q "REVOKE ALL ON \"$db\" FROM \"$name\"" || die "cannot revoke from $name"
    q "GRANT $privilege ON \"$db\" TO \"$name\"" || die "cannot grant $privilege on $db to $name"
    echo "setup.sh: user $name may $what $db"
}

user "$ingest_user" "$ingest_password" ALL "write (and read)"
user "$grafana_user" "$grafana_password" READ "read"
# the residents' page: one user that only reads, one that only writes the marks
user "$cy_read_user" "$cy_read_password" READ "read"
user "$cy_write_user" "$cy_write_password" WRITE "write (not read)"
# the scheduled analysis: reads levels, writes its points (no admin rights)
user "$analysis_user" "$analysis_password" ALL "read and write"
