# Sourced by ops/demo, ops/test and ops/bench: make a fresh machine ready.
# Creates .venv, installs mailpipe with its dev extras at the versions CI last passed with
# (constraints.txt), and installs the system packages the suite talks to (redis-server;
# smtp-sink from postfix; promtool from prometheus; dovecot-imapd; rabbitmq-server) when they are
# missing and we are root. Tests start private instances of each on free ports.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

need_apt=()
command -v redis-server >/dev/null 2>&1 || need_apt+=(redis-server)
# PostgreSQL for the control plane: tests and the demo start private clusters (initdb + pg_ctl).
{ command -v initdb >/dev/null 2>&1 || ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; } || need_apt+=(postgresql)
if [ "${MAILPIPE_MINIMAL_DEPS:-0}" != "1" ]; then
  [ -x /usr/sbin/smtp-sink ] || command -v smtp-sink >/dev/null 2>&1 || need_apt+=(postfix)
  command -v promtool >/dev/null 2>&1 || need_apt+=(prometheus)
  [ -x /usr/sbin/dovecot ] || command -v dovecot >/dev/null 2>&1 || need_apt+=(dovecot-imapd)
  [ -x /usr/lib/rabbitmq/bin/rabbitmq-server ] || command -v rabbitmq-server >/dev/null 2>&1 || need_apt+=(rabbitmq-server)
fi
if [ ${#need_apt[@]} -gt 0 ]; then
  if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
    echo "installing system packages: ${need_apt[*]}" >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >/dev/null
    apt-get install -y -qq --no-install-recommends "${need_apt[@]}" >/dev/null
    # postfix and dovecot start system daemons on install; the suite runs its own private ones.
    (command -v postfix >/dev/null 2>&1 && postfix stop >/dev/null 2>&1) || true
    (command -v doveadm >/dev/null 2>&1 && doveadm stop >/dev/null 2>&1) || true
    # rabbitmq-server starts the system node on 5672: left alone, the tests start private nodes
    # the package starts a cluster on 5432; ours are private, so leave the system one as the package set it
  elif ! command -v redis-server >/dev/null 2>&1; then
    echo "redis-server is missing: install it (apt-get install redis-server) or run as root" >&2
    exit 1
  else
    echo "note: optional packages missing (${need_apt[*]}); their tests will be skipped (failed under CI=true)" >&2
  fi
fi

PYTHON="${PYTHON:-python3}"
if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -m venv .venv
fi
stamp=.venv/.mailpipe-installed
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ] || [ constraints.txt -nt "$stamp" ]; then
  .venv/bin/python -m pip install -q --upgrade pip >/dev/null
  # constraints.txt pins every dependency to what CI last passed with; pyproject.toml keeps the
  # bare bounds for library users. Regenerate it after a dependency change (see its header).
  .venv/bin/python -m pip install -q -c constraints.txt -e ".[dev]"
  touch "$stamp"
fi
export PATH="$ROOT/.venv/bin:$PATH"
