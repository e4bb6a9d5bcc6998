# Sourced by ops/demo, ops/test and ops/bench: make a fresh machine ready.
# Creates .venv, installs mailpipe with its dev extras, and installs the system packages the
# suite talks to (redis-server; smtp-sink from postfix; promtool from prometheus; dovecot-imapd)
# when they are missing and we are root.
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
    # the package starts a cluster on 5432; ours are private, so leave the system one as the package set it
  elif ! command -v redis-server >/dev/null 2>&1; then
    echo "redis-server is missing: install it (apt-get install redis-server) or run as root" >&2
    exit 1
  else
    echo "note: optional packages missing (${need_apt[*]}); their tests will be skipped" >&2
  fi
fi

PYTHON="${PYTHON:-python3}"
if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -m venv .venv
fi
stamp=.venv/.mailpipe-installed
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
  .venv/bin/python -m pip install -q --upgrade pip >/dev/null
  .venv/bin/python -m pip install -q -e ".[dev]"
  touch "$stamp"
fi
export PATH="$ROOT/.venv/bin:$PATH"
