# tests/lib/pg.sh: a PostgreSQL 15 cluster of a test's own (sourced, not
# run; POSIX sh). pg_start DIR makes an unprivileged cluster in DIR with
# initdb and starts it with pg_ctl on a Unix socket in DIR (no TCP:
# listen_addresses is empty unless PG_TCP=1, then 127.0.0.1 only), on a
# port found free, so tests running at once never meet; fsync is off unless
# PG_FSYNC=on (tests need no durability across a machine crash; make bench
# measures with it on). It sets PGHOST,
# PGPORT, PGUSER (tally, the cluster's superuser) and PGDATABASE (default
# tally, created), and PG_URI, the ledger location of that database
# ("postgresql:///tally?host=DIR&port=N&user=tally"). pg_stop stops it
# (fast shutdown), pg_restart restarts it; the caller removes DIR.
#
# As root, initdb and the server run as the postgres system user (setpriv),
# which must reach DIR: DIR's parents get o+x. As another user they run as
# that user. pg_need says why a test must be skipped (exit 77) when the
# server programs are missing (scripts/deps.sh installs postgresql).
PG_BIN=${PG_BIN:-/usr/lib/postgresql/15/bin}

pg_need() {
	[ -x "$PG_BIN/initdb" ] && [ -x "$PG_BIN/pg_ctl" ] && command -v psql >/dev/null && return 0
	echo "PostgreSQL 15 is not installed ($PG_BIN/initdb, psql): scripts/deps.sh installs postgresql"
	return 1
}

pg_free_port() {
	python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

pg_as() {
	if [ "$(id -u)" = 0 ]; then
		setpriv --reuid=postgres --regid=postgres --clear-groups -- "$@"
	else
		"$@"
	fi
}

pg_start() {
	PG_DIR=$1
	pg_need || return 1
	if [ "$(id -u)" = 0 ]; then
		getent passwd postgres >/dev/null || { echo "pg_start: no postgres user"; return 1; }
		# the postgres user must reach DIR: a test's mktemp -d parent is 0700
		_pg_d=$(dirname "$PG_DIR")
		while [ "$_pg_d" != / ]; do chmod o+x "$_pg_d"; _pg_d=$(dirname "$_pg_d"); done
		mkdir -p "$PG_DIR"
		chown postgres:postgres "$PG_DIR"
	else
		mkdir -p "$PG_DIR"
	fi
	chmod 0755 "$PG_DIR"
	PGPORT=$(pg_free_port)
	pg_as "$PG_BIN/initdb" -D "$PG_DIR/data" -A trust -U tally -E UTF8 --no-instructions \
		> "$PG_DIR/initdb.log" 2>&1 || { echo "pg_start: initdb failed:"; cat "$PG_DIR/initdb.log"; return 1; }
	_pg_listen="''"
	[ "${PG_TCP:-0}" = 1 ] && _pg_listen=127.0.0.1
	cat >> "$PG_DIR/data/postgresql.conf" <<EOC
listen_addresses = $_pg_listen
port = $PGPORT
unix_socket_directories = '$PG_DIR'
max_connections = 60
shared_buffers = ${PG_SHARED_BUFFERS:-64MB}
fsync = ${PG_FSYNC:-off}
synchronous_commit = ${PG_FSYNC:-off}
full_page_writes = ${PG_FSYNC:-off}
log_min_messages = warning
EOC
	pg_as "$PG_BIN/pg_ctl" -D "$PG_DIR/data" -l "$PG_DIR/server.log" -w -t 60 start > /dev/null ||
		{ echo "pg_start: pg_ctl start failed:"; cat "$PG_DIR/server.log"; return 1; }
	PGHOST=$PG_DIR
	PGUSER=tally
	PGDATABASE=${PGDATABASE:-tally}
	export PGHOST PGPORT PGUSER PGDATABASE
	"$PG_BIN/createdb" "$PGDATABASE" 2>"$PG_DIR/createdb.log" ||
		{ echo "pg_start: createdb failed:"; cat "$PG_DIR/createdb.log"; return 1; }
	PG_URI="postgresql:///$PGDATABASE?host=$PGHOST&port=$PGPORT&user=$PGUSER"
	export PG_URI
}

pg_stop() {
	[ -n "${PG_DIR:-}" ] && [ -d "$PG_DIR/data" ] &&
		pg_as "$PG_BIN/pg_ctl" -D "$PG_DIR/data" -m fast -w -t 60 stop > /dev/null 2>&1
	return 0
}

pg_restart() {
	pg_as "$PG_BIN/pg_ctl" -D "$PG_DIR/data" -l "$PG_DIR/server.log" -m fast -w -t 60 restart > /dev/null
}

# pg_down / pg_up: stop the server (fast: sessions are cut) and start it
# again, the cluster kept.
pg_down() {
	pg_as "$PG_BIN/pg_ctl" -D "$PG_DIR/data" -m fast -w -t 60 stop > /dev/null
}
pg_up() {
	pg_as "$PG_BIN/pg_ctl" -D "$PG_DIR/data" -l "$PG_DIR/server.log" -w -t 60 start > /dev/null
}

# pg_schema NAME: a fresh, empty schema NAME in the database, and in
# PG_LEDGER the ledger location that keeps a ledger there.
pg_schema() {
	psql -q -X -v ON_ERROR_STOP=1 -c "DROP SCHEMA IF EXISTS $1 CASCADE; CREATE SCHEMA $1" >/dev/null 2>&1 ||
		{ echo "pg_schema: cannot create schema $1"; return 1; }
	PG_LEDGER="$PG_URI&options=-csearch_path%3D$1"
}
