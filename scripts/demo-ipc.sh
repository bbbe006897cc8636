#!/usr/bin/env bash
# The IPC core on its own: an engine plus a few clients that register, allocate in
# their own blocks and leave, with `ipcsync status` showing the registry while they are there.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/setup-deps.sh
cmake --preset release >/dev/null
cmake --build --preset release | tail -n 1
bin=build/release
ns="demo-$$"

"$bin/sync-engine/ipcsyncd" --config config/engine.yaml --namespace "$ns" &
engine=$!
cleanup() { kill -TERM "$engine" 2>/dev/null || true; wait "$engine" 2>/dev/null || true; }
trap cleanup EXIT

for _ in $(seq 100); do "$bin/sync-engine/ipcsync" status -n "$ns" >/dev/null 2>&1 && break; sleep 0.05; done

echo "== four clients register and allocate in their own blocks"
clients=()
for name in crm mining supply-chain call-centre; do
  extra=()
  [[ $name == crm ]] && extra=(--publish accounts)   # crm also publishes on a cached topic
  "$bin/ipccore/ipcsync-demo-client" --namespace "$ns" --name "$name" --allocations 48 --hold-ms 1500 "${extra[@]}" &
  clients+=($!)
done
sleep 0.7
echo
echo "== ipcsync status -n $ns (what the registry shows)"
"$bin/sync-engine/ipcsync" status -n "$ns"
echo
echo "== one client is killed with SIGKILL; the engine reclaims its block at once"
kill -KILL "${clients[3]}"
sleep 0.2
"$bin/sync-engine/ipcsync" status -n "$ns"
echo
for pid in "${clients[@]:0:3}"; do wait "$pid"; done
wait "${clients[3]}" 2>/dev/null || true
echo
echo "== after the clients left"
"$bin/sync-engine/ipcsync" status -n "$ns"
cleanup
trap - EXIT
if ls /dev/shm | grep -q "ipcsync.$ns"; then echo "demo: segment left behind" >&2; exit 1; fi
echo
echo "demo: engine stopped cleanly; nothing left in /dev/shm"
