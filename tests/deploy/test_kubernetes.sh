#!/usr/bin/env bash
# Validates deploy/kubernetes/ offline:
#   1. schemas: every manifest against the Kubernetes OpenAPI schemas (kubernetes-models,
#      with unknown fields reported as kubectl --validate=strict would) - tests/deploy/tools;
#   2. fit: probes, ports, flags, ConfigMap, drain and grace periods, resources, security and
#      the HPA's metrics against edmd and the Dockerfile, and a live edmd started with the
#      ConfigMap's file (tests/deploy/check_kubernetes.py);
#   3. kustomize: `kubectl kustomize` renders the set, where a kubectl >= 1.27 exists;
# and the same for deploy/kubernetes-redis/, the base with the Redis job store (Redis, KEDA):
# schemas of its full manifests (and of its rendering, patches applied, with kubectl), and
# its fit with edmd, Redis and KEDA (tests/deploy/check_kubernetes_redis.py).
set -u
. "$(dirname "$0")/lib.sh"
cd "$REPO"
P=0 F=0 S=0
add() { # adds the counts of a closing line in file $1
    local line; line=$(grep -E '^[0-9]+ passed, [0-9]+ failed, [0-9]+ skipped$' "$1" | tail -n 1)
    if [ -z "$line" ]; then F=$((F + 1)); return; fi
    local p f s; read -r p _ f _ s _ <<<"${line//,/}"
    P=$((P + p)); F=$((F + f)); S=$((S + s))
}
log=$(mktemp)
trap 'rm -f "$log"' EXIT
manifests=(deploy/kubernetes/configmap.yaml deploy/kubernetes/deployment.yaml deploy/kubernetes/service.yaml
           deploy/kubernetes/pdb.yaml deploy/kubernetes/hpa.yaml
           deploy/kubernetes-redis/redis.yaml deploy/kubernetes-redis/scaledobject.yaml)

echo "== schemas"
have_npm_tools=0
if deploy_npm_tools; then
    have_npm_tools=1
    node tests/deploy/tools/k8s_schema.mjs "${manifests[@]}" | tee "$log"
    add "$log"
else
    echo "SKIP schemas: node/npm or the npm registry unavailable (tests/deploy/tools)"
    S=$((S + 1))
fi

echo "== fit with edmd and the image"
if py=$(deploy_python); then
    "$py" tests/deploy/check_kubernetes.py | tee "$log"
    add "$log"
    echo "== the Redis variant (deploy/kubernetes-redis) with edmd, Redis and KEDA"
    "$py" tests/deploy/check_kubernetes_redis.py | tee "$log"
    add "$log"
else
    echo "SKIP fit: no python3 with PyYAML (Debian: python3-yaml)"
    S=$((S + 1))
fi

echo "== kustomize"
kv=$(kubectl version --client -o json 2>/dev/null | grep -o '"minor": *"[0-9]*' | grep -o '[0-9]*$')
# render DIR WANT: the kinds `kubectl kustomize DIR` renders must be WANT (sorted)
render() {
    local dir=$1 want=$2 out kinds
    if out=$(kubectl kustomize "$dir" 2>&1); then
        kinds=$(printf '%s\n' "$out" | grep -E '^kind: ' | sort | tr '\n' ' ')
        if [ "$kinds" = "$want" ]; then echo "ok   kubectl kustomize $dir renders $(wc -w <<<"$want" | awk '{print $1 / 2}') objects"; P=$((P + 1))
        else echo "FAIL kubectl kustomize $dir: got $kinds"; F=$((F + 1)); fi
        printf '%s\n' "$out" >"$log.render.yaml"
    else
        echo "FAIL kubectl kustomize $dir: $out"; F=$((F + 1))
        : >"$log.render.yaml"
    fi
}
if [ -n "$kv" ] && [ "$kv" -ge 27 ]; then
    render deploy/kubernetes "kind: ConfigMap kind: Deployment kind: HorizontalPodAutoscaler kind: PodDisruptionBudget kind: Service "
    render deploy/kubernetes-redis "kind: ConfigMap kind: ConfigMap kind: Deployment kind: PodDisruptionBudget kind: ScaledObject kind: Service kind: Service kind: StatefulSet kind: TriggerAuthentication "
    if [ "$have_npm_tools" = 1 ] && [ -s "$log.render.yaml" ]; then
        echo "== schemas of deploy/kubernetes-redis as rendered (its patches applied)"
        node tests/deploy/tools/k8s_schema.mjs "$log.render.yaml" | sed "s|$log.render.yaml|deploy/kubernetes-redis (rendered)|" | tee "$log"
        add "$log"
    fi
    rm -f "$log.render.yaml"
else
    echo "SKIP kubectl kustomize: no kubectl >= 1.27 (the schemas above do not need one)"
    S=$((S + 1))
fi
echo "$P passed, $F failed, $S skipped"
[ "$F" -eq 0 ]
