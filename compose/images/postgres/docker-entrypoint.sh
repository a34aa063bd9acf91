#!/bin/bash
# Entrypoint of afasa-local/postgres:15-bookworm.
#
# It mimics the official postgres image's contract closely enough for the AFASA stack and
# for afasa-ops' tests, because the real image cannot be pulled on machines without a
# container registry:
#   - POSTGRES_USER (default postgres), POSTGRES_PASSWORD (required unless
#     POSTGRES_HOST_AUTH_METHOD=trust), POSTGRES_DB (default: POSTGRES_USER),
#     POSTGRES_INITDB_ARGS, POSTGRES_HOST_AUTH_METHOD (default scram-sha-256);
#   - an EMPTY $PGDATA is initialised, and only then /docker-entrypoint-initdb.d/* runs in
#     name order (*.sql with ON_ERROR_STOP, *.sql.gz, *.sh executed or sourced);
#   - a second start on a non-empty data dir never re-runs the init scripts (the AFASA
#     runbook depends on exactly this behaviour);
#   - the server listens on 0.0.0.0:5432, local socket connections are trusted, remote ones
#     need a password.
set -Eeuo pipefail

PGBIN=/usr/lib/postgresql/15/bin
export PATH="$PGBIN:$PATH"
export PGDATA="${PGDATA:-/var/lib/postgresql/data}"

log() { printf '%s [entrypoint] %s\n' "$(date -u +%Y-%m-%dT%H:%M:%SZ)" "$*"; }
die() { log "error: $*" >&2; exit 1; }

# "docker run IMAGE -c foo=bar" means "postgres -c foo=bar", as in the official image.
if [ "${1:-}" = "" ] || [ "${1:0:1}" = "-" ]; then
	set -- postgres "$@"
fi

if [ "$1" != "postgres" ]; then
	exec "$@"
fi

# As root: prepare directories, then re-exec as the postgres user (the server refuses root).
if [ "$(id -u)" = "0" ]; then
	mkdir -p "$PGDATA" /var/run/postgresql
	chown -R postgres:postgres "$PGDATA" /var/run/postgresql
	chmod 700 "$PGDATA"
	chmod 2775 /var/run/postgresql
	exec setpriv --reuid=postgres --regid=postgres --init-groups "$0" "$@"
fi

POSTGRES_USER="${POSTGRES_USER:-postgres}"
POSTGRES_DB="${POSTGRES_DB:-$POSTGRES_USER}"
POSTGRES_HOST_AUTH_METHOD="${POSTGRES_HOST_AUTH_METHOD:-scram-sha-256}"

if [ ! -s "$PGDATA/PG_VERSION" ]; then
	if [ -z "${POSTGRES_PASSWORD:-}" ] && [ "$POSTGRES_HOST_AUTH_METHOD" != "trust" ]; then
		die "database is uninitialized and POSTGRES_PASSWORD is not set (set it, or POSTGRES_HOST_AUTH_METHOD=trust)"
	fi
	log "initialising empty data directory $PGDATA"
	pwfile="$(mktemp)"
	printf '%s\n' "${POSTGRES_PASSWORD:-}" >"$pwfile"
	# shellcheck disable=SC2086  # POSTGRES_INITDB_ARGS is a word list by contract
	initdb --username="$POSTGRES_USER" --pwfile="$pwfile" --encoding=UTF8 --locale=C.UTF-8 \
		--auth-local=trust --auth-host="$POSTGRES_HOST_AUTH_METHOD" ${POSTGRES_INITDB_ARGS:-} \
		-D "$PGDATA" >/dev/null
	rm -f "$pwfile"
	{
		echo "listen_addresses = '*'"
		[ "$POSTGRES_HOST_AUTH_METHOD" = "md5" ] && echo "password_encryption = md5"
	} >>"$PGDATA/postgresql.conf"
	# initdb only allows 127.0.0.1/::1 over TCP; containers are reached from other hosts.
	echo "host all all all $POSTGRES_HOST_AUTH_METHOD" >>"$PGDATA/pg_hba.conf"

	# A temporary server on the socket only, so nobody connects before init is complete.
	pg_ctl -D "$PGDATA" -o "-c listen_addresses='' -p 5432" -w start >/dev/null
	psql_cmd=(psql -v ON_ERROR_STOP=1 --no-psqlrc --username "$POSTGRES_USER" --no-password)
	if [ "$POSTGRES_DB" != "postgres" ]; then
		"${psql_cmd[@]}" --dbname postgres --set db="$POSTGRES_DB" <<-'EOSQL'
			CREATE DATABASE :"db";
		EOSQL
	fi
	psql_cmd+=(--dbname "$POSTGRES_DB")
	shopt -s nullglob
	for f in /docker-entrypoint-initdb.d/*; do
		case "$f" in
		*.sh)
			if [ -x "$f" ]; then
				log "running $f"
				"$f"
			else
				log "sourcing $f"
				# shellcheck disable=SC1090
				. "$f"
			fi
			;;
		*.sql)
			log "running $f"
			"${psql_cmd[@]}" -f "$f"
			;;
		*.sql.gz)
			log "running $f"
			gunzip -c "$f" | "${psql_cmd[@]}"
			;;
		*) log "ignoring $f" ;;
		esac
	done
	shopt -u nullglob
	pg_ctl -D "$PGDATA" -m fast -w stop >/dev/null
	log "init complete; ready for start up"
else
	log "data directory $PGDATA already initialised; skipping init scripts"
fi

exec postgres "${@:2}"
