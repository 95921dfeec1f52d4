#!/bin/sh
# A shared MLflow tracking server for this project: runs in a SQL store, artifacts served (proxied)
# by the server itself, so every machine that runs stages logs to one place over HTTP.
#
# Usage: scripts/mlflow_server.sh [--host H] [--port P] [--store URI] [--artifacts DIR]
#                                 [--experiment NAME] [--workers N] [--allowed-hosts LIST]
#                                 [--auth] [--auth-db URI] [--print-command]
#                                 [-- extra mlflow server args]
# (extra args may not set what the options below set: --host, --port, --backend-store-uri,
# --app-name, --allowed-hosts)
# Each option also reads an environment variable (the option wins); the defaults:
#   --host          CGEN_MLFLOW_HOST          127.0.0.1 (this machine only; see "Other machines")
#   --port          CGEN_MLFLOW_PORT          5000
#   --store         CGEN_MLFLOW_STORE         sqlite:///<repo>/.tracking/server/mlflow.db
#   --artifacts     CGEN_MLFLOW_ARTIFACTS     <repo>/.tracking/server/artifacts (or s3://bucket/...)
#   --experiment    CGEN_MLFLOW_EXPERIMENT    classifier-generators (params.yaml
#                                             `tracking.experiment`)
#   --workers       CGEN_MLFLOW_WORKERS       1 (uvicorn workers; one is plenty on 2 cores, and
#                                             SQLite takes one writer at a time anyway)
#   --allowed-hosts CGEN_MLFLOW_ALLOWED_HOSTS none: more Host names clients use (comma-separated,
#                                             `name`, `name:port` or wildcards like `*.lan`)
#   --auth          CGEN_MLFLOW_AUTH=1        off on loopback; always on for any other --host
#   --auth-db       CGEN_MLFLOW_AUTH_DB       sqlite:///<the store's folder>/basic_auth.db (users)
#   --print-command                           check the options, print what would run (the
#                                             environment it would set, secrets as ****, and the
#                                             command line), then exit: nothing starts or is written
# The store may be any SQLAlchemy URI. For a team, PostgreSQL
# (postgresql://user:pass@dbhost/mlflow) needs the driver in the server's environment only
# (`.venv/bin/pip install psycopg2-binary`; not part of requirements.lock, not installed here);
# clients talk HTTP and need nothing extra. An `s3://` artifact destination needs boto3 on the
# server, `gs://` google-cloud-storage. A store
# URI with a password belongs in CGEN_MLFLOW_STORE, set from a file only you can read
# (`. ~/.mlflow-store.env`), not in --store, which the shell's history and `ps` show. The script
# prints it as user:****@ and hands it to mlflow in its environment (MLFLOW_BACKEND_STORE_URI),
# never on its command line.
#
# Other machines. Whoever reaches the port can read, change and delete every run, parameter,
# metric and artifact, over plain HTTP. So on loopback (127.0.0.1, ::1, localhost) it runs as
# before, and any other --host (0.0.0.0, a LAN address) turns on MLflow's login (its basic-auth
# app); the script refuses to start without the admin password, given in the environment only:
#   CGEN_MLFLOW_ADMIN_PASSWORD       the password (12 characters at least: MLflow's rule), or
#   CGEN_MLFLOW_ADMIN_PASSWORD_FILE  a file holding it (its first line), mode 600 (refused if
#                                    others may read it)
#   CGEN_MLFLOW_ADMIN_USER           the admin's name (default admin)
# The admin user is created with that password when the users database (--auth-db) is new; later
# starts need the same password (it creates the experiment with it), and changing the variable
# does not change the stored password. Every account may read and log runs (MLflow permission
# EDIT); deleting takes the admin or the experiment's creator. Clients log in with
# MLFLOW_TRACKING_USERNAME / MLFLOW_TRACKING_PASSWORD in their environment (or
# ~/.mlflow/credentials). The login travels in clear over plain HTTP: beyond a trusted LAN, put a
# TLS reverse proxy in front, or keep the default 127.0.0.1 and reach it through an SSH tunnel
# (docs/scale.md, "The tracking server's security"). MLflow's login needs Flask-WTF
# (pinned in requirements.lock; `make setup` installs it). With --auth, files the server writes are
# readable by its user only (umask 077); it writes the login's config, basic_auth.ini (mode 600,
# no password in it), in a SQLite store's folder, else in .tracking/server/.
# MLflow checks each request's Host header: off loopback the script allows localhost, this
# machine's `hostname` and addresses (`hostname -I`) and the --host address, each with and
# without the port, plus --allowed-hosts; add the names clients use beyond those (a DNS alias,
# the proxy's name).
#
# It prints the value for params.yaml, then runs `mlflow server` in the foreground (exec: its pid
# is this script's; Ctrl-C or SIGTERM stops it and its workers). Point the stages at it with
#   uri: http://127.0.0.1:5000   (under `tracking:` in params.yaml; never put a login in it)
# or per experiment: .venv/bin/dvc exp run -S tracking.uri=http://127.0.0.1:5000 ...
# Stages never wait for the server: they spool their runs (.tracking/spool) and a detached flusher
# sends them; if the server is down they stay spooled until `bin/cgen track flush`.
#
# The experiment is created here, as soon as the server answers, with the server's own artifact
# root (mlflow-artifacts:/), so reviewers see it before the first run arrives (a flusher that
# finds it missing creates it the same way: pipeline/flusher.py `_client`).
set -eu

root=$(cd "$(dirname "$0")/.." && pwd)
host=${CGEN_MLFLOW_HOST:-127.0.0.1}
port=${CGEN_MLFLOW_PORT:-5000}
store=${CGEN_MLFLOW_STORE:-sqlite:///$root/.tracking/server/mlflow.db}
artifacts=${CGEN_MLFLOW_ARTIFACTS:-$root/.tracking/server/artifacts}
experiment=${CGEN_MLFLOW_EXPERIMENT:-classifier-generators}
workers=${CGEN_MLFLOW_WORKERS:-1}
extra_hosts=${CGEN_MLFLOW_ALLOWED_HOSTS:-}
auth=${CGEN_MLFLOW_AUTH:-}
auth_db=${CGEN_MLFLOW_AUTH_DB:-}
dry=

usage() { sed -n '2,/^set -eu/p' "$0" | sed -e '/^set -eu/d' -e 's/^# \{0,1\}//'; }
die() { echo "mlflow_server.sh: $2" >&2; exit "$1"; }
# A URI as it may be shown: a password (user:PASSWORD@, ?password=) becomes ****.
mask() {
  printf '%s\n' "$1" | sed -E -e 's#^([A-Za-z][A-Za-z0-9+.-]*://[^:/@]*):.*@#\1:****@#' \
    -e 's#([?&;]password=)[^&;]*#\1****#g'
}
need() { [ $# -ge 2 ] || die 2 "$1 needs a value"; }
while [ $# -gt 0 ]; do
  case $1 in
    --host) need "$@"; host=$2; shift 2 ;;
    --port) need "$@"; port=$2; shift 2 ;;
    --store) need "$@"
      [ "$(mask "$2")" = "$2" ] || die 2 "--store holds a password, which the shell's history and ps would show: give it as CGEN_MLFLOW_STORE"
      store=$2; shift 2 ;;
    --artifacts) need "$@"; artifacts=$2; shift 2 ;;
    --experiment) need "$@"; experiment=$2; shift 2 ;;
    --workers) need "$@"; workers=$2; shift 2 ;;
    --allowed-hosts) need "$@"; extra_hosts=$2; shift 2 ;;
    --auth) auth=1; shift ;;
    --auth-db) need "$@"
      [ "$(mask "$2")" = "$2" ] || die 2 "--auth-db holds a password, which the shell's history and ps would show: give it as CGEN_MLFLOW_AUTH_DB"
      auth_db=$2; shift 2 ;;
    --print-command) dry=1; shift ;;
    -h|--help) usage; exit 0 ;;
    --) shift; break ;;
    *) die 2 "unknown argument '$1' (--help)" ;;
  esac
done

for arg in "$@"; do  # what the checks below rest on is not to be overridden behind their back
  case $arg in
    -h|--host|--host=*) die 2 "give the address as --host before --, not to mlflow" ;;
    -p|--port|--port=*) die 2 "give the port as --port before --, not to mlflow" ;;
    --backend-store-uri*) die 2 "give the store as CGEN_MLFLOW_STORE (or --store), not to mlflow" ;;
    --app-name*) die 2 "the script picks the app: --auth for MLflow's login" ;;
    --allowed-hosts*) die 2 "give the names as --allowed-hosts before --, not to mlflow" ;;
    # a server's own options can add a bind address (gunicorn's -b adds one) or settings
    --gunicorn-opts*|--uvicorn-opts*|--waitress-opts*|--env-file*|--disable-security-middleware*)
      die 2 "$arg can bind other addresses or turn the checks off: not accepted after --" ;;
  esac
done


case $auth in
  1|true|yes|on) auth=1 ;;
  ''|0|false|no|off) auth= ;;
  *) die 2 "CGEN_MLFLOW_AUTH must be 1 or 0, not '$auth'" ;;
esac
case $host in
  127.0.0.1|::1|'[::1]'|localhost) loopback=1 ;;
  *) loopback=; auth=1 ;;
esac

admin_user=${CGEN_MLFLOW_ADMIN_USER:-admin}
password=${CGEN_MLFLOW_ADMIN_PASSWORD:-}
if [ -n "$auth" ] && [ -z "$password" ] && [ -n "${CGEN_MLFLOW_ADMIN_PASSWORD_FILE:-}" ]; then
  file=$CGEN_MLFLOW_ADMIN_PASSWORD_FILE
  [ -f "$file" ] && [ -r "$file" ] || die 2 "cannot read CGEN_MLFLOW_ADMIN_PASSWORD_FILE '$file'"
  case $(ls -ln -- "$file" | cut -c5-10) in
    ------) ;;
    *) die 2 "others may read CGEN_MLFLOW_ADMIN_PASSWORD_FILE '$file': chmod 600 '$file'" ;;
  esac
  IFS= read -r password <"$file" || :  # the first line (a last line without newline too)
  [ -n "$password" ] || die 2 "CGEN_MLFLOW_ADMIN_PASSWORD_FILE '$file' holds no password"
fi
if [ -n "$auth" ] && [ -z "$password" ]; then
  how="set CGEN_MLFLOW_ADMIN_PASSWORD (or CGEN_MLFLOW_ADMIN_PASSWORD_FILE, a file of mode 600) and optionally CGEN_MLFLOW_ADMIN_USER in the environment"
  [ -z "$loopback" ] || die 2 "--auth needs the admin's password: $how"
  die 2 "--host $host lets other machines in, so it needs a login: $how, or keep --host 127.0.0.1 and use an SSH tunnel (docs/scale.md)"
fi
if [ -n "$auth" ] && [ ${#password} -lt 12 ]; then  # MLflow's own rule, said before it starts
  die 2 "the admin password must have at least 12 characters (MLflow's rule)"
fi

if [ -x "$root/.venv/bin/mlflow" ]; then bin=$root/.venv/bin; else bin=$(dirname "$(command -v mlflow)"); fi
[ -x "$bin/mlflow" ] || die 1 "no mlflow (run make setup)"
if [ -n "$auth" ] && [ -z "$dry" ]; then
  "$bin/python" -c 'import flask_wtf' 2>/dev/null ||
    die 1 "MLflow's login (basic-auth app) needs Flask-WTF, pinned in requirements.lock: run make setup"
fi

case $store in  # where a SQLite store lives, the users database and its config live too
  sqlite:///*) state=$(dirname "${store#sqlite:///}") ;;
  *) state=$root/.tracking/server ;;
esac
case $artifacts in
  *://* | /*) ;;
  *) artifacts=$PWD/$artifacts ;;
esac
auth_db=${auth_db:-sqlite:///$state/basic_auth.db}
ini=$state/basic_auth.ini

# The Host names clients may use (MLflow refuses others). On loopback MLflow's own default
# (localhost and private addresses, any port) is kept unless --allowed-hosts adds names.
hosts=
add_host() { case ",$hosts," in *",$1,"*) ;; *) hosts=${hosts:+$hosts,}$1 ;; esac; }
case $host in
  0.0.0.0|::) shown=$(hostname); names="$shown $(hostname -I 2>/dev/null || :)" ;;
  *) shown=$host; names=$host ;;
esac
case $shown in \[*\]) ;; *:*) shown="[$shown]" ;; esac  # an IPv6 address, as in a URL
case $host in
  0.0.0.0) probe=127.0.0.1 ;;
  ::) probe='[::1]' ;;
  *) probe=$shown ;;
esac
if [ -z "$loopback" ] || [ -n "$extra_hosts" ]; then
  set -f  # wildcards in names are MLflow's, not the shell's
  for n in localhost 127.0.0.1 ::1 $names; do
    case $n in \[*\]) ;; *:*) n="[$n]" ;; esac  # IPv6, bracketed as in a Host header
    add_host "$n"
    add_host "$n:$port"
  done
  old_ifs=$IFS; IFS=,
  for n in $extra_hosts; do [ -z "$n" ] || add_host "$n"; done
  IFS=$old_ifs; set +f
fi

uri=http://$shown:$port
echo "tracking.uri: $uri"
echo "  (params.yaml tracking.uri, or: .venv/bin/dvc exp run -S tracking.uri=$uri ...)"
echo "  store $(mask "$store"), artifacts $artifacts, experiment '$experiment'"
if [ -n "$auth" ]; then
  echo "  login required (MLflow basic-auth, users in $(mask "$auth_db")): clients set" \
    "MLFLOW_TRACKING_USERNAME=$admin_user (or an account the admin made) and MLFLOW_TRACKING_PASSWORD"
  echo "  plain HTTP: beyond a trusted LAN put a TLS proxy in front or use an SSH tunnel (docs/scale.md)"
fi
[ -z "$hosts" ] || echo "  allowed Host names: $hosts"

# What mlflow gets: the store and every secret in its environment, none on its command line.
MLFLOW_DISABLE_TELEMETRY=true
MLFLOW_BACKEND_STORE_URI=$store
export MLFLOW_DISABLE_TELEMETRY MLFLOW_BACKEND_STORE_URI
if [ -n "$hosts" ]; then MLFLOW_SERVER_ALLOWED_HOSTS=$hosts; export MLFLOW_SERVER_ALLOWED_HOSTS; fi
set -- server --serve-artifacts --artifacts-destination "$artifacts" --host "$host" \
  --port "$port" --workers "$workers" "$@"
if [ -n "$auth" ]; then
  set -- "$@" --app-name basic-auth
  # the CSRF key of MLflow's sign-up page: one per start unless given (all workers inherit it)
  MLFLOW_FLASK_SERVER_SECRET_KEY=${MLFLOW_FLASK_SERVER_SECRET_KEY:-$(od -An -N32 -tx1 /dev/urandom | tr -d ' \n')}
  MLFLOW_AUTH_CONFIG_PATH=$ini
  MLFLOW_AUTH_ADMIN_USERNAME=$admin_user
  MLFLOW_AUTH_ADMIN_PASSWORD=$password
  export MLFLOW_FLASK_SERVER_SECRET_KEY MLFLOW_AUTH_CONFIG_PATH MLFLOW_AUTH_ADMIN_USERNAME \
    MLFLOW_AUTH_ADMIN_PASSWORD
fi

if [ -n "$dry" ]; then
  echo "environment:"
  echo "  MLFLOW_DISABLE_TELEMETRY=true"
  echo "  MLFLOW_BACKEND_STORE_URI=$(mask "$store")"
  [ -z "$hosts" ] || echo "  MLFLOW_SERVER_ALLOWED_HOSTS=$hosts"
  if [ -n "$auth" ]; then
    echo "  MLFLOW_AUTH_CONFIG_PATH=$ini (written at start, mode 600: users database $(mask "$auth_db"), default permission EDIT)"
    echo "  MLFLOW_AUTH_ADMIN_USERNAME=$admin_user"
    echo "  MLFLOW_AUTH_ADMIN_PASSWORD=****"
    echo "  MLFLOW_FLASK_SERVER_SECRET_KEY=****"
  fi
  printf 'command: %s' "$bin/mlflow"
  printf ' %s' "$@"
  printf '\n'
  exit 0
fi

if [ -n "$auth" ]; then umask 077; fi  # the users database, the runs, the config: ours only
case $store in
  sqlite:///*) mkdir -p "$state" ;;
esac
case $artifacts in
  *://*) ;;
  *) mkdir -p "$artifacts"; artifacts=$(cd "$artifacts" && pwd) ;;
esac
if [ -n "$auth" ]; then
  mkdir -p "$state"
  ini_value() { printf '%s' "$1" | sed 's/%/%%/g'; }  # configparser reads % as interpolation
  rm -f "$ini"
  cat >"$ini" <<EOF
# Written by scripts/mlflow_server.sh at each start (MLFLOW_AUTH_CONFIG_PATH); edits are lost.
[mlflow]
default_permission = EDIT
database_uri = $(ini_value "$auth_db")
admin_username = $(ini_value "$admin_user")
authorization_function = mlflow.server.auth:authenticate_request_basic_auth
EOF
  chmod 600 "$ini"
fi

# Create the experiment once the server answers (in the background: the server runs in front).
# Plain urllib, no MLflow import; an existing experiment is left as it is. The admin's login
# reaches it in its environment, never its command line. It gives up when the server's process
# (this one, after exec) is gone.
_CGEN_LOGIN=${auth:+$admin_user:$password} "$bin/python" - "http://$probe:$port" "$experiment" $$ <<'EOF' &
import base64, json, os, sys, time, urllib.error, urllib.request
base, name, server = sys.argv[1], sys.argv[2], int(sys.argv[3])
login = os.environ.pop("_CGEN_LOGIN", "")
while True:  # the first start on a loaded 2-core machine took 30 s here
    try:
        urllib.request.urlopen(base + "/health", timeout=2).read()
        break
    except OSError:
        try:
            os.kill(server, 0)
        except OSError:
            sys.exit(0)  # the server exited (e.g. port in use): it said why
        time.sleep(0.5)
headers = {"Content-Type": "application/json"}
if login:
    headers["Authorization"] = "Basic " + base64.b64encode(login.encode()).decode()
req = urllib.request.Request(base + "/api/2.0/mlflow/experiments/create",
                             data=json.dumps({"name": name}).encode(), headers=headers)
try:
    urllib.request.urlopen(req, timeout=30).read()
    print(f"mlflow_server.sh: created experiment '{name}' (artifacts served by the server)")
except urllib.error.HTTPError as exc:
    body = exc.read()
    if exc.code == 401:
        sys.exit(f"mlflow_server.sh: could not create experiment '{name}': the admin password "
                 "differs from the one the users database was created with")
    if b"RESOURCE_ALREADY_EXISTS" not in body:
        sys.exit(f"mlflow_server.sh: could not create experiment '{name}': {exc}")
EOF

exec "$bin/mlflow" "$@"
