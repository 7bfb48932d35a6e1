#!/usr/bin/env bash
# GPU smoke test of the Kubernetes configuration (for a session with the device machine; not
# run by make test): a CUDA-built edmd started as the pod starts it - the ConfigMap's
# edmd.conf, EDMD_BACKEND=cuda as the image sets it - with host, port and model swapped for
# loopback and a test model. Checks the probes' paths, /metrics' HPA series, a generation,
# then SIGTERM under load: every request answered (200, or 503 for work that arrived after
# the signal), exit 0 within the grace period.
#   EDMD=build/edmd MODEL=tests/vectors/edm_songunet_ddpmpp/model.safetensors tests/deploy/gpu_smoke.sh
set -u
cd "$(dirname "$0")/../.."
EDMD=${EDMD:-build/edmd}
MODEL=${MODEL:-tests/vectors/edm_songunet_ddpmpp/model.safetensors}
BACKEND=${BACKEND:-cuda}  # cpu: a dry run of this script on a machine without a GPU
P=0 F=0
ok() { if eval "$2"; then echo "ok   $1"; P=$((P + 1)); else echo "FAIL $1"; F=$((F + 1)); fi; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
nvidia-smi -L 2>/dev/null | head -n 2
# the ConfigMap's edmd.conf (the block under "edmd.conf: |"), loopback and a test model
awk '/edmd.conf: \|/{f=1; next} f && /^[^ ]/{f=0} f{sub(/^    /, ""); print}' deploy/kubernetes/configmap.yaml |
    grep -vE '^(host|port|model) *=' >"$tmp/edmd.conf"
printf 'host = 127.0.0.1\nport = 0\nport-file = %s/port\nmodel = %s\n' "$tmp" "$MODEL" >>"$tmp/edmd.conf"
grep -E '^(max-batch|drain-timeout|precision|devices)' "$tmp/edmd.conf" | tr '\n' ' '; echo
EDMD_CONFIG=$tmp/edmd.conf EDMD_BACKEND=$BACKEND "$EDMD" >"$tmp/log" 2>&1 &
pid=$!
for _ in $(seq 200); do [ -s "$tmp/port" ] && break; sleep 0.05; done
U=http://127.0.0.1:$(cat "$tmp/port" 2>/dev/null)
t0=$(date +%s.%N)
for _ in $(seq 300); do [ "$(curl -s -o /dev/null -w '%{http_code}' "$U/readyz")" = 200 ] && break; sleep 0.1; done
echo "ready after $(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN{printf "%.2f", b-a}') s"
grep -E 'ready:|model ' "$tmp/log"
ok "startup/readiness probe /readyz answers 200" '[ "$(curl -s -o /dev/null -w %{http_code} $U/readyz)" = 200 ]'
ok "liveness probe /healthz answers 200" '[ "$(curl -s -o /dev/null -w %{http_code} $U/healthz)" = 200 ]'
ok "the worker runs on $BACKEND" 'grep -q "ready: .*$BACKEND" "$tmp/log"'
curl -s "$U/metrics" >"$tmp/metrics"
ok "/metrics has edm_queue_depth and edm_worker_busy_seconds_total" \
   'grep -q "^edm_queue_depth " "$tmp/metrics" && grep -q "^edm_worker_busy_seconds_total " "$tmp/metrics"'
code=$(curl -s -o "$tmp/gen.json" -w '%{http_code}' "$U/v1/images/generations" -H 'Content-Type: application/json' \
       -d '{"n": 8, "seed": 1, "steps": 18}')
ok "a generation of 8 images answers 200" '[ "$code" = 200 ]'
# load, then SIGTERM in the middle of it
for i in $(seq 1 48); do
    curl -s -o /dev/null -w '%{http_code}\n' --max-time 60 "$U/v1/images/generations" \
         -H 'Content-Type: application/json' -d "{\"n\": 4, \"seed\": $i, \"steps\": 64}" >>"$tmp/codes" &
done
sleep 0.3
curl -s "$U/metrics" | grep -E '^edm_(queue_depth|images_in_flight) '
t1=$(date +%s.%N)
kill -TERM "$pid"
wait "$pid"
rc=$?
dt=$(awk -v a="$t1" -v b="$(date +%s.%N)" 'BEGIN{printf "%.2f", b-a}')
wait
echo "drain: exit $rc after $dt s; answers: $(sort "$tmp/codes" | uniq -c | tr '\n' ' ')"
ok "SIGTERM under load: exit 0" '[ "$rc" = 0 ]'
ok "the drain ends within the grace period budget (35 s)" 'awk -v d="$dt" "BEGIN{exit !(d < 35)}"'
ok "every request got one answer: 200, or 503 (draining: refused or cut at the drain deadline)" \
   '[ "$(wc -l <"$tmp/codes")" = 48 ] && ! grep -qvE "^(200|503)$" "$tmp/codes"'
tail -n 3 "$tmp/log" | cut -c1-200
echo "$P passed, $F failed, 0 skipped"
[ "$F" = 0 ]
