#!/usr/bin/env bash
# The demo (README's run command): scripts/demo.sh [SECONDS]
#
# Installs what is missing, builds, starts ipcsyncd with config/example.yaml (crm -> mining, and a
# second CRM replica kept in sync both ways), runs the call-centre simulator against the first
# CRM for SECONDS (default 20), and prints live what was captured, routed and applied, with lag.
# Ctrl-C stops it early. At the end it checks that mining's aggregates equal a GROUP BY over the
# CRM and that both CRM replicas hold the same rows, and prints where the databases are.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds="${1:-20}"

scripts/setup-deps.sh
cmake --preset release >/dev/null
cmake --build --preset release | tail -n 1
bin=build/release/sync-engine
simulator=$(find build/release -name ipcsync-callcentre -type f | head -n 1)
sim=""

# A fresh state directory per run: the databases and the journal live there.
state=$(mktemp -d /tmp/ipcsync-demo-XXXXXX)
export XDG_STATE_HOME="$state"
data="$state/ipcsync/demo"
runtime="$state/run"
mkdir -p "$runtime"

"$bin/ipcsync" validate config/example.yaml
"$bin/ipcsyncd" --config config/example.yaml --runtime-dir "$runtime" --log-level warn 2>"$state/ipcsyncd.log" &
daemon=$!
stopped=0
stop() {
  ((stopped)) && return
  stopped=1
  [[ -n "$sim" ]] && kill -TERM "$sim" 2>/dev/null || true
  kill -TERM "$daemon" 2>/dev/null || true
  wait "$daemon" 2>/dev/null || true
}
trap 'echo; echo "== interrupted"; stop' INT
trap stop EXIT

status() { "$bin/ipcsync" status -n demo 2>/dev/null || true; }
echo "== waiting for the engine, three plugin hosts and the sync engine"
for _ in $(seq 200); do
  out=$(status)
  if grep -q "plugin.crm " <<<"$out" && grep -q "plugin.crm2" <<<"$out" && grep -q "plugin.mining" <<<"$out" &&
     grep -qE "^ *[0-9]+ +sync " <<<"$out"; then break; fi
  sleep 0.1
done
if ! kill -0 "$daemon" 2>/dev/null; then
  echo "ipcsyncd did not start (its log follows); nothing was changed" >&2
  cat "$state/ipcsyncd.log" >&2
  exit 1
fi
status

echo
echo "== the call centre works on $data/crm/crm.db for $seconds s (plain SQL, 200 operations/s)"
"$simulator" --database "$data/crm/crm.db" --rate 200 --duration "$seconds" --seed 1 >"$state/callcentre.log" 2>&1 &
sim=$!
while kill -0 "$sim" 2>/dev/null; do
  sleep 2
  echo "-- $(date +%T)"
  status | sed -n '/^ROUTE/,$p'
done
wait "$sim" || true
tail -n 1 "$state/callcentre.log"

echo
echo "== letting the last changes arrive"
crm="$data/crm/crm.db" crm2="$data/crm2/crm.db" mining="$data/mining/mining.db"
agg() {
  sqlite3 "$1" "SELECT coalesce(sum(order_count),0) || ' orders, ' || coalesce(sum(revenue_cents),0) || ' cents' FROM sales_by_region"
}
source_agg() {
  sqlite3 "$1" "SELECT count(*) || ' orders, ' || coalesce(sum(quantity * unit_price_cents),0) || ' cents' FROM orders"
}
rows() {
  sqlite3 "$1" "SELECT (SELECT count(*) FROM accounts) || '/' || (SELECT count(*) FROM contacts) || '/' ||
                       (SELECT count(*) FROM interactions) || '/' || (SELECT count(*) FROM orders)"
}
for _ in $(seq 100); do
  [[ "$(agg "$mining")" == "$(source_agg "$crm")" && "$(rows "$crm")" == "$(rows "$crm2")" ]] && break
  sleep 0.2
done
status | sed -n '/^ROUTE/,$p'

echo
echo "== results"
echo "crm    orders: $(source_agg "$crm")"
echo "mining totals: $(agg "$mining")"
echo "crm  accounts/contacts/interactions/orders: $(rows "$crm")"
echo "crm2 accounts/contacts/interactions/orders: $(rows "$crm2")"
ok=1
[[ "$(agg "$mining")" == "$(source_agg "$crm")" ]] && echo "mining's aggregates equal a GROUP BY over the CRM" ||
  { echo "MISMATCH: mining's aggregates differ from the CRM"; ok=0; }
[[ "$(rows "$crm")" == "$(rows "$crm2")" ]] && echo "both CRM replicas hold the same rows" ||
  { echo "MISMATCH: the CRM replicas differ"; ok=0; }
stop
echo
echo "== the databases (open them with sqlite3):"
echo "  $crm"
echo "  $crm2"
echo "  $mining"
echo "  journal: $data/journal.db      daemon log: $state/ipcsyncd.log"
((ok))
