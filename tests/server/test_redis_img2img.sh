#!/usr/bin/env bash
# An async job that starts from an image, through the Redis job store: created on replica a
# while a has no room (a long synchronous generation fills its one batch slot), so replica b
# takes it from the shared queue and runs it from the record alone. The record carries the
# init image and the mask (the request as POSTed, base64 PNGs and all); b's result is the
# image a synchronous request makes (whose kept pixels test_img2img.sh checks), and its PNG
# text names the files' SHA-256.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/redis_lib.sh"
need_daemon
need_redis
need_pngs
J=(-H 'Content-Type: application/json')

redis_start || { fail "redis-server starts"; finish; }
rep_start a --max-batch 1 --max-steps 10000 || { fail "replica a starts"; finish; }
rep_start b --max-batch 4 || { fail "replica b starts"; finish; }
A=${REP_URL[a]} B=${REP_URL[b]}

# a's one slot taken by a long synchronous generation (never through the store)
curl -s -o /dev/null -X POST "$A/v1/images/generations" "${J[@]}" -d '{"seed": 1, "steps": 10000}' &
long=$!
in_flight() { curl -s "$A/metrics" | awk '$1 == "edm_images_in_flight" {print $2}'; }
for _ in $(seq 1 100); do
    [ "$(in_flight)" = 1 ] && break
    sleep 0.05
done
sleep 1 # a's puller may be in a blocking read (half a second) begun while it had room

BODY=$(jq -cn --arg img "$(base64 -w0 "$P/digit.png")" --arg mask "$(base64 -w0 "$P/mask.png")" \
    '{init_image: $img, mask: $mask, seed: 7, n: 2, steps: 4}')
eq "a's one slot is taken" "$(in_flight)" 1
code=$(curl -s -o "$TMP/j.json" -w '%{http_code}' -X POST "$A/v1/jobs" "${J[@]}" --data-binary "$BODY")
eq "create on a: 202" "$code" 202
id=$(jq -r .id "$TMP/j.json")
check "the job completes" await_status "$B" "$id" completed 30
eq "b ran it (a had no room)" "$(owner_of "$id")" b
check "the record carries the init image and the mask" \
    bash -c "redis-cli -p $REDIS_PORT hget 'edm:job:$id' request | jq -e '.init_image and .mask and .seeds == [7, 8]' >/dev/null"
kill "$long" 2>/dev/null
wait "$long" 2>/dev/null

curl -s -o "$TMP/s.json" -X POST "$B/v1/images/generations" "${J[@]}" --data-binary "$BODY"
b64_images "$TMP/s.json" "$TMP/s"
for i in 0 1; do
    curl -s -o "$TMP/job$i.png" "$A/v1/jobs/$id/images/$i"
    eq "image $i: the synchronous request's pixels" "$(pngdiff "$TMP/job$i.png" "$TMP/s.$i.png" | cut -d' ' -f1-2)" "0 0"
done
eq "the PNG text names the init image" "$(python3 tests/server/pngtool.py text "$TMP/job0.png" init_image_sha256)" \
    "$(sha256sum "$P/digit.png" | cut -c1-64)"
eq "and the mask" "$(python3 tests/server/pngtool.py text "$TMP/job0.png" mask_sha256)" \
    "$(sha256sum "$P/mask.png" | cut -c1-64)"
check "a stops" rep_stop a
check "b stops" rep_stop b
finish
