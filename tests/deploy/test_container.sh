#!/usr/bin/env bash
# The Dockerfile's CPU image, built and served from, without a Docker engine or a registry:
#   1. a minimal Debian root (debootstrap --variant=minbase bookworm, cached by
#      tests/deploy/debian_root.sh in $BUILD/debian-minbase) is imported with `podman import` as
#      the base image the CPU stages name (debian:bookworm-slim becomes
#      localhost/debian:bookworm-slim, which the short name resolves to; nothing is pulled);
#   2. `podman build --isolation=chroot --target cpu` of the Dockerfile as it is, with the
#      repository as its context (each stage up to the target is tagged, so that the layer cache
#      survives the pruning of what earlier runs left);
#   3. a container of the image is created (never started: this needs no runtime, cgroups or
#      network of its own) and its filesystem mounted (`podman mount`); edmd then runs from it,
#      in a network namespace of its own with only loopback, with
#      `chroot --userspec=USER ROOTFS env -i --chdir=WORKDIR ENV... ENTRYPOINT CMD`, every part
#      read from `podman image inspect`, so the image's own configuration is what serves (its
#      ports 8080 and 9090, its /etc/edmd/edmd.conf, its bundled model), with /proc, /sys and a
#      small /dev as a container runtime gives them.
# Checks: the image runs as a non-root numeric user and holds no compiler, linker, make or -dev
# package, nor the sources; edmd runs as that user; every EXPOSEd port answers /healthz, one is
# the API, the other serves only the probes; the image's own HEALTHCHECK command passes inside
# it; a generation (seed 42, "seven", 18 steps) returns a PNG that records the bundled model's
# SHA-256 and has the same pixels as `$BUILD/edm sample` on this machine; `edm info` works in
# the image; SIGTERM (the image's STOPSIGNAL) just after an asynchronous job was accepted turns
# /readyz and new work 503, the job completes and its image is served, then edmd exits 0.
#
# Runs where podman, debootstrap, unshare, nsenter and ip are (make test installs them: the
# test set of deps/debian.txt) and as root; says SKIP with the reason otherwise, where the
# Debian mirror does not answer or podman cannot use its storage here; EDM_TEST_CONTAINER=0
# skips it. Podman is told by flags where everything goes (nothing in /var/lib/containers): its
# store and temporary files under $BUILD/podman, its run state in a tmpfs mounted at
# /run/edm-podman.HASH in the test's namespace only. The base image and the layers stay in the
# store as a cache, so a rerun with the same sources builds nothing; the container, the mounts
# and the processes go at the end, also on failure (the test runs in a private mount and PID
# namespace, and a trap unmounts and removes). Storage driver: overlay, else vfs (EDM_CONTAINER_STORAGE_DRIVER).
# Times are printed ("time: ...") and kept in $BUILD/container/times.txt with the logs.
set -u
cd "$(dirname "$0")/../.."
REPO=$(pwd)
BUILD=${BUILD:-build}
OUT=$REPO/$BUILD/container
WHAT="container image"
TARGET=cpu
IMAGE=localhost/edm-serve-test
. tests/deploy/debian_root.sh
PODMAN_DIR=$REPO/$BUILD/podman
MODEL=models/mnist-edm.safetensors

# ---- inside the namespace ---------------------------------------------------------------------
# podman with its store in $PODMAN_DIR/$DRIVER and its run state in $RUNDIR: a tmpfs mounted in
# this namespace only, at a short path (overlay refuses a runroot of more than 50 characters),
# so that it goes with the namespace, as /run goes at a reboot
pm() {
    TMPDIR=$PODMAN_DIR/$DRIVER/tmp podman --root "$PODMAN_DIR/$DRIVER/store" --runroot "$RUNDIR/storage" \
        --tmpdir "$RUNDIR/libpod" --network-config-dir "$RUNDIR/net" --storage-driver "$DRIVER" \
        --cgroup-manager cgroupfs --events-backend file "$@"
}
inns() { nsenter --net="/proc/$NS_PID/ns/net" "$@"; } # in edmd's network namespace

CID="" ROOTFS="" NS_PID="" EDMD_PID=""
cleanup() {
    local p
    for p in $EDMD_PID $NS_PID; do
        { kill -KILL "$p" && wait "$p"; } 2>/dev/null
    done
    if [ -n "$ROOTFS" ] && mounted_under "$ROOTFS/dev"; then umount -R "$ROOTFS/dev"; fi
    if [ -n "$ROOTFS" ] && mounted_under "$ROOTFS/proc"; then umount "$ROOTFS/proc"; fi
    if [ -n "$ROOTFS" ] && mounted_under "$ROOTFS/sys"; then umount "$ROOTFS/sys"; fi
    [ -n "$CID" ] && pm umount "$CID" >/dev/null 2>&1
    if [ -n "${DRIVER:-}" ]; then
        remove_containers >/dev/null # ours, and a build's if it was cut short
        # what earlier runs built and this one replaced (the tagged stages keep the cache)
        pm image prune -f >/dev/null 2>&1
        remove_tree "$PODMAN_DIR/$DRIVER/tmp"
    fi
    if [ -n "${RUNDIR:-}" ] && mounted_under "$RUNDIR"; then
        umount -R "$RUNDIR" && rmdir "$RUNDIR"
    fi
}

remove_containers() { # every container in the store, podman's and the build's; prints how many
    local c n=0
    for c in $(pm ps -a --external -q 2>/dev/null); do
        pm rm -f "$c" >/dev/null 2>&1 && n=$((n + 1))
    done
    echo "$n"
}

podman_setup() { # picks the storage driver that works here; fresh run folders
    local d log=$OUT/podman-info.log
    : >"$log"
    for d in ${EDM_CONTAINER_STORAGE_DRIVER:-overlay vfs}; do
        DRIVER=$d
        RUNDIR=/run/edm-podman.$(printf %s "$PODMAN_DIR/$d" | sha256sum | cut -c1-12)
        if ! mounted_under "$RUNDIR"; then
            mkdir -p "$RUNDIR" && mount -t tmpfs -o mode=700 edm-podman "$RUNDIR" || return 1
        fi
        remove_tree "$PODMAN_DIR/$d/tmp" || return 1
        mkdir -p "$PODMAN_DIR/$d/tmp" "$PODMAN_DIR/$d/store"
        if pm info >>"$log" 2>&1; then
            echo "podman $(podman --version | awk '{ print $3 }'), storage driver $d, store $PODMAN_DIR/$d/store"
            local left
            left=$(remove_containers)
            [ "$left" -eq 0 ] || echo "removed $left container(s) an interrupted run left in the store"
            return 0
        fi
        umount "$RUNDIR" && rmdir "$RUNDIR"
    done
    DRIVER=""
    echo "podman info failed with every storage driver (log: $log):"
    tail_log "$log" 10
    return 1
}

# the images the stages up to $TARGET start from, with the ARGs' defaults put in
base_images() {
    awk -v target="$TARGET" '
        !from && $1 == "ARG" && index($2, "=") { split($2, kv, "="); arg[kv[1]] = kv[2] }
        toupper($1) == "FROM" {
            from = 1; img = $2
            for (k in arg) gsub("\\$\\{" k "\\}", arg[k], img)
            if (!(img in stage)) print img
            name = (toupper($3) == "AS") ? $4 : ""
            stage[name] = 1
            if (name == target) exit
        }' Dockerfile | sort -u
}
stages() { # the stage names up to $TARGET
    awk -v target="$TARGET" 'toupper($1) == "FROM" && toupper($3) == "AS" { print $4; if ($4 == target) exit }' Dockerfile
}

import_base() { # the minimal root as every base image of the target; kept while the root is the same
    local bases b stamp=$PODMAN_DIR/$DRIVER/base-image t0 first
    bases=$(base_images)
    for b in $bases; do
        case $b in
            "debian:$SUITE"|"debian:$SUITE-"*) ;;
            *) fail "the $TARGET target starts from $b, not Debian $SUITE (the root this test imports)"; return 1 ;;
        esac
    done
    local want
    want="$(cat "$MINBASE/.edm-base"): $bases"
    if [ "$(cat "$stamp" 2>/dev/null)" = "$want" ] && pm image exists "localhost/${bases%%$'\n'*}"; then
        echo "base image: localhost/${bases//$'\n'/, localhost/} ($want)"
        return 0
    fi
    t0=$(now)
    first=localhost/${bases%%$'\n'*}
    # the root as Debian's images have it: no apt lists or downloaded packages; PATH and CMD as theirs
    if ! (set -o pipefail
          tar -C "$MINBASE" -c --numeric-owner --exclude=./.edm-base --exclude='./dev/*' \
              --exclude='./proc/*' --exclude='./sys/*' --exclude='./var/lib/apt/lists/*' \
              --exclude='./var/cache/apt/archives/*.deb' . |
          pm import --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
              --change 'CMD ["bash"]' - "$first") >"$OUT/import.log" 2>&1; then
        fail "podman import of $MINBASE as $first (log: $OUT/import.log)"
        tail_log "$OUT/import.log"
        return 1
    fi
    for b in $bases; do
        pm tag "$first" "localhost/$b" || { fail "podman tag $first localhost/$b"; return 1; }
    done
    echo "$want" >"$stamp"
    timed "podman import of the minimal root as $(echo $bases)" "$t0"
}

build_image() { # each stage up to $TARGET, tagged $IMAGE:STAGE
    local s t0 log
    for s in $(stages); do
        t0=$(now)
        log=$OUT/build-$s.log
        if ! pm build --isolation=chroot --pull=never --layers --format docker \
                --target "$s" -t "$IMAGE:$s" -f Dockerfile . >"$log" 2>&1; then
            fail "podman build --isolation=chroot --target $s (log: $log)"
            tail_log "$log" 40
            return 1
        fi
        timed "podman build --target $s ($(grep -c '^--> Using cache' "$log") steps from the cache)" "$t0"
    done
    pass "podman build --isolation=chroot --target $TARGET of the Dockerfile as it is"
}

# a runtime's view of the filesystem: /proc, a read-only /sys and a /dev of the usual few nodes
enter_rootfs() {
    mount -t proc proc "$ROOTFS/proc" && mount -t sysfs -o ro sysfs "$ROOTFS/sys" &&
        mount -t tmpfs -o mode=755,nosuid dev "$ROOTFS/dev" || return 1
    local n
    for n in null zero full random urandom tty; do
        [ -c "/dev/$n" ] || continue
        touch "$ROOTFS/dev/$n" && mount --bind "/dev/$n" "$ROOTFS/dev/$n" || return 1
    done
    mkdir -p "$ROOTFS/dev/shm" "$ROOTFS/dev/pts" && mount -t tmpfs -o mode=1777,nosuid,nodev shm "$ROOTFS/dev/shm" &&
        ln -s /proc/self/fd "$ROOTFS/dev/fd" && ln -s /proc/self/fd/0 "$ROOTFS/dev/stdin" &&
        ln -s /proc/self/fd/1 "$ROOTFS/dev/stdout" && ln -s /proc/self/fd/2 "$ROOTFS/dev/stderr"
}

code_of() { inns curl -s -o /dev/null -w '%{http_code}' --max-time 10 "http://127.0.0.1:$1$2"; }

inner() {
    trap cleanup EXIT
    debian_minbase || finish
    podman_setup || skip_all "podman cannot use a storage driver here (log: $OUT/podman-info.log)"
    import_base || finish
    build_image || finish
    local tag=$IMAGE:$TARGET
    pm image inspect "$tag" >"$OUT/image.json" || { fail "podman image inspect $tag"; finish; }
    echo "image: $tag, $(jq -r '.[0].Size / 1e6 | floor' "$OUT/image.json") MB (inspect: $OUT/image.json)"

    # ---- the image's configuration and filesystem
    local cfg='.[0].Config'
    USERSPEC=$(jq -r "$cfg.User // \"\"" "$OUT/image.json")
    WORKDIR=$(jq -r "$cfg.WorkingDir // \"\" | if . == \"\" then \"/\" else . end" "$OUT/image.json")
    mapfile -t ENVS < <(jq -r "$cfg.Env // [] | .[]" "$OUT/image.json")
    local entry=() cmd=() ports=() stopsig
    mapfile -t entry < <(jq -r "$cfg.Entrypoint // [] | .[]" "$OUT/image.json")
    mapfile -t cmd < <(jq -r "$cfg.Cmd // [] | .[]" "$OUT/image.json")
    mapfile -t ports < <(jq -r "$cfg.ExposedPorts // {} | keys[] | select(endswith(\"/tcp\")) | rtrimstr(\"/tcp\")" "$OUT/image.json")
    stopsig=$(jq -r "$cfg.StopSignal // \"SIGTERM\"" "$OUT/image.json")
    echo "config: user $USERSPEC, workdir $WORKDIR, entrypoint ${entry[*]}, cmd ${cmd[*]:-(none)}, ports ${ports[*]}, stop $stopsig"
    echo "        env ${ENVS[*]}"
    if [[ $USERSPEC =~ ^[0-9]+:[0-9]+$ ]] && [ "${USERSPEC%%:*}" -ne 0 ]; then
        pass "the image runs as a numeric non-root user ($USERSPEC)"
    else
        fail "the image's USER is '$USERSPEC', not a numeric non-root UID:GID"
        finish
    fi
    CID=$(pm create --network none --no-healthcheck "$tag" 2>"$OUT/create.log") &&
        ROOTFS=$(pm mount "$CID" 2>>"$OUT/create.log") && [ -d "$ROOTFS" ] ||
        { fail "podman create and mount of $tag (log: $OUT/create.log)"; tail_log "$OUT/create.log"; finish; }
    echo "container $CID, filesystem at $ROOTFS"

    local tools=() t dir
    for dir in $(printf '%s\n' "${ENVS[@]}" | sed -n 's/^PATH=//p' | tr ':' ' '); do
        for t in cc c++ gcc g++ cpp clang ld as make nvcc; do
            [ -e "$ROOTFS$dir/$t" ] || [ -L "$ROOTFS$dir/$t" ] && tools+=("$dir/$t")
        done
    done
    local devpkgs
    devpkgs=$(dpkg-query --admindir="$ROOTFS/var/lib/dpkg" -W -f='${db:Status-Abbrev} ${Package}\n' 2>/dev/null |
              awk '$1 == "ii" && $2 ~ /^(build-essential|gcc(-[0-9]+)?|g\+\+(-[0-9]+)?|cpp(-[0-9]+)?|binutils.*|make|dpkg-dev|.*-dev)$/ { printf " %s", $2 }')
    if [ ${#tools[@]} -eq 0 ] && [ -z "$devpkgs" ] && [ ! -e "$ROOTFS/src" ]; then
        pass "no compiler, linker or make on the image's PATH, no build package, no /src"
    else
        fail "the runtime image carries build tools:${tools[*]:+ ${tools[*]}}${devpkgs}$([ -e "$ROOTFS/src" ] && echo ' /src')"
    fi

    # ---- serving, in a network namespace of its own
    unshare --net sleep 86400 &
    NS_PID=$!
    sleep 0.2
    inns ip link set lo up || { fail "loopback up in a new network namespace"; finish; }
    enter_rootfs || { fail "mounting /proc, /sys and /dev in $ROOTFS"; finish; }
    local t0 home
    home=$(awk -F: -v u="${USERSPEC%%:*}" '$3 == u { print $6 }' "$ROOTFS/etc/passwd")
    ENVS+=("HOME=${home:-/}")
    # in the image, as its user, with its environment and working directory (a simple command,
    # so that $! is edmd's PID: nsenter, chroot and env each exec the next)
    IN_IMAGE=(nsenter --net="/proc/$NS_PID/ns/net" chroot --userspec="$USERSPEC" "$ROOTFS"
              /usr/bin/env -i --chdir="$WORKDIR" "${ENVS[@]}")
    t0=$(now)
    "${IN_IMAGE[@]}" "${entry[@]}" "${cmd[@]}" >"$OUT/edmd.log" 2>&1 &
    EDMD_PID=$!
    local p api="" admin="" ready=0
    for _ in $(seq 600); do
        kill -0 "$EDMD_PID" 2>/dev/null || break
        for p in "${ports[@]}"; do [ "$(code_of "$p" /readyz)" = 200 ] && ready=1; done
        [ "$ready" = 1 ] && break
        sleep 0.1
    done
    if [ "$ready" != 1 ]; then
        fail "edmd from the image: no /readyz 200 on ${ports[*]} within 60 s (log: $OUT/edmd.log)"
        tail_log "$OUT/edmd.log"
        finish
    fi
    timed "edmd from the image to /readyz 200" "$t0"
    local uids gids
    uids=$(awk '/^Uid:/ { print $2, $3, $4, $5 }' "/proc/$EDMD_PID/status")
    gids=$(awk '/^Gid:/ { print $2, $3, $4, $5 }' "/proc/$EDMD_PID/status")
    local u=${USERSPEC%%:*} g=${USERSPEC#*:}
    if [ "$uids" = "$u $u $u $u" ] && [ "$gids" = "$g $g $g $g" ] &&
       [ "$(readlink "/proc/$EDMD_PID/exe")" = "$ROOTFS${entry[0]}" ]; then
        pass "edmd runs as $USERSPEC, the image's ${entry[0]}"
    else
        fail "edmd's uid ($uids), gid ($gids), exe ($(readlink "/proc/$EDMD_PID/exe")): wanted $USERSPEC, $ROOTFS${entry[0]}"
    fi
    local healthy=1
    for p in "${ports[@]}"; do
        [ "$(code_of "$p" /healthz)" = 200 ] || healthy=0
        case $(code_of "$p" /v1/models) in
            200) api=$p ;;
            404) admin=$p ;;
        esac
    done
    if [ "$healthy" = 1 ] && [ -n "$api" ] && [ -n "$admin" ] && [ "${#ports[@]}" = 2 ]; then
        pass "every EXPOSEd port answers /healthz: the API on $api, the probes only on $admin"
    else
        fail "EXPOSE ${ports[*]}: /healthz on each ($healthy), one API ($api) and one admin port ($admin)"
        finish
    fi
    local hc hc_kind
    hc_kind=$(jq -r '.[0].Healthcheck.Test[0] // .[0].Config.Healthcheck.Test[0] // ""' "$OUT/image.json")
    hc=$(jq -r '(.[0].Healthcheck.Test // .[0].Config.Healthcheck.Test // [])[1:] | @sh' "$OUT/image.json")
    case $hc_kind in
        CMD-SHELL) eval "\"\${IN_IMAGE[@]}\" /bin/sh -c $hc" ;;
        CMD) eval "\"\${IN_IMAGE[@]}\" $hc" ;;
        *) false ;;
    esac >"$OUT/healthcheck.log" 2>&1
    local rc=$?
    if [ -n "$hc_kind" ] && [ "$rc" -eq 0 ]; then
        pass "the image's HEALTHCHECK passes in the image ($hc_kind $hc)"
    else
        fail "the image's HEALTHCHECK ($hc_kind $hc): exit $rc (log: $OUT/healthcheck.log)"
    fi
    local models
    models=$(inns curl -s --max-time 10 "http://127.0.0.1:$api/v1/models" | jq -r '[.data[].id] | join(" ")')
    [ "$models" = mnist-edm ] && pass "/v1/models: the bundled mnist-edm" || fail "/v1/models lists '$models', wanted mnist-edm"

    # ---- a generation, against this machine's own edm
    local code png=$OUT/seven.png
    code=$(inns curl -s --max-time 120 -o "$png" -w '%{http_code} %{content_type}' \
           -X POST "http://127.0.0.1:$api/v1/images/generations" -H 'Content-Type: application/json' \
           -H 'Accept: image/png' -d '{"prompt": "seven", "seed": 42, "steps": 18}')
    local info req sha
    info=$(python3 tests/server/pngtool.py info "$png" 2>&1)
    req=$(python3 tests/server/pngtool.py text "$png" Request 2>/dev/null)
    sha=$(sha256sum "$MODEL" | cut -d' ' -f1)
    if [ "$code" = "200 image/png" ] && [ "$(jq -r '"\(.seed) \(.class_label) \(.steps) \(.model_sha256)"' <<<"$req" 2>/dev/null)" = "42 7 18 $sha" ]; then
        pass "a generation returns a PNG ($info, $(wc -c <"$png") bytes: $png) of seed 42, class 7, 18 steps, $MODEL"
    else
        fail "the generation: $code, '$info', Request '$req' (wanted seed 42, class 7, 18 steps, model_sha256 $sha)"
    fi
    if [ -x "$BUILD/edm" ]; then
        rm -rf "$OUT/ref" && "$BUILD/edm" sample --model "$MODEL" --seeds 42 --class 7 --steps 18 --png-dir "$OUT/ref" >/dev/null 2>&1
        local diff
        diff=$(python3 tests/server/pngtool.py diff "$png" "$OUT/ref/000042.png" 2>&1)
        [ "${diff% *}" = "0 0" ] && pass "the same pixels as $BUILD/edm sample here ($diff)" ||
            fail "the image's PNG against $BUILD/edm sample's: $diff (differing, max difference, values)"
    else
        skip "pixels against $BUILD/edm sample: $BUILD/edm not built (make)"
    fi
    if "${IN_IMAGE[@]}" /usr/local/bin/edm info "/opt/edm-serve/$MODEL" >"$OUT/edm-info.log" 2>&1; then
        pass "edm info runs in the image"
    else
        fail "edm info in the image (log: $OUT/edm-info.log)"
        tail_log "$OUT/edm-info.log" 10
    fi

    # ---- the stop signal with an asynchronous job just accepted: the drain keeps serving until
    # its image is read (however long the machine takes to make it, within drain-timeout),
    # refusing new work meanwhile, then exits 0
    local job
    job=$(inns curl -s --max-time 10 -X POST "http://127.0.0.1:$api/v1/jobs" -H 'Content-Type: application/json' \
          -d '{"prompt": "three", "seed": 1, "steps": 5}' | jq -r '.id // empty')
    [ -n "$job" ] || { fail "POST /v1/jobs: no job id"; finish; }
    t0=$(now)
    kill -s "${stopsig#SIG}" "$EDMD_PID"
    local ready_code=000 new_code=000 img_code=000
    for _ in $(seq 100); do
        ready_code=$(code_of "$admin" /readyz)
        [ "$ready_code" = 503 ] && break
        sleep 0.05
    done
    new_code=$(inns curl -s -o /dev/null -w '%{http_code}' --max-time 10 -X POST \
               "http://127.0.0.1:$api/v1/images/generations" -H 'Content-Type: application/json' -d '{"seed": 2}')
    for _ in $(seq 600); do
        img_code=$(inns curl -s -o "$OUT/drain.png" -w '%{http_code}' --max-time 10 \
                   "http://127.0.0.1:$api/v1/jobs/$job/images/0")
        [ "$img_code" = 200 ] && break
        sleep 0.05
    done
    local deadline=$((SECONDS + 45)) exited=0
    while [ "$SECONDS" -lt "$deadline" ]; do
        kill -0 "$EDMD_PID" 2>/dev/null || { exited=1; break; }
        sleep 0.1
    done
    rc=-1
    if [ "$exited" = 1 ]; then
        wait "$EDMD_PID"
        rc=$?
        EDMD_PID=""
    fi
    timed "$stopsig to exit, through a job of 5 steps" "$t0"
    if [ "$ready_code $new_code $img_code $rc" = "503 503 200 0" ] &&
       python3 tests/server/pngtool.py info "$OUT/drain.png" >/dev/null 2>&1; then
        pass "$stopsig drains: /readyz and new work 503, the accepted job finishes and its PNG is served, exit 0"
    else
        fail "$stopsig: /readyz $ready_code, new work $new_code (want 503, 503), the job's image $img_code (want 200), exit $rc (want 0; log: $OUT/edmd.log)"
        grep -v '^{' "$OUT/edmd.log" | tail -n 10 | sed 's/^/    /'
    fi
    finish
}

[ "${1:-}" = --inner ] && inner

# ---- outside: can it run here? --------------------------------------------------------------
[ "${EDM_TEST_CONTAINER:-1}" = 0 ] && skip_all "EDM_TEST_CONTAINER=0"
root_preflight podman nsenter ip jq python3 tar
mkdir -p "$PODMAN_DIR"
exec 9>"$PODMAN_DIR.lock"
flock -w 1800 9 || skip_all "another run holds $PODMAN_DIR.lock"
run_inner EDM_CONTAINER_BUDGET 1800
