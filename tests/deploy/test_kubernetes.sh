#!/usr/bin/env bash
# Validates deploy/kubernetes/ offline:
#   1. schemas: every manifest against the Kubernetes OpenAPI schemas (kubernetes-models,
#      with unknown fields reported as kubectl --validate=strict would) - tests/deploy/tools;
#   2. fit: probes, ports, flags, ConfigMap, drain and grace periods, resources, security and
#      the HPA's metrics against edmd and the Dockerfile, and a live edmd started with the
#      ConfigMap's file (tests/deploy/check_kubernetes.py);
#   3. kustomize: `kubectl kustomize` renders the set, where a kubectl >= 1.27 exists.
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
           deploy/kubernetes/pdb.yaml deploy/kubernetes/hpa.yaml)

echo "== schemas"
if deploy_npm_tools; then
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
else
    echo "SKIP fit: no python3 with PyYAML (Debian: python3-yaml)"
    S=$((S + 1))
fi

echo "== kustomize"
kv=$(kubectl version --client -o json 2>/dev/null | grep -o '"minor": *"[0-9]*' | grep -o '[0-9]*$')
if [ -n "$kv" ] && [ "$kv" -ge 27 ]; then
    if out=$(kubectl kustomize deploy/kubernetes 2>&1); then
        kinds=$(printf '%s\n' "$out" | grep -E '^kind: ' | sort | tr '\n' ' ')
        want="kind: ConfigMap kind: Deployment kind: HorizontalPodAutoscaler kind: PodDisruptionBudget kind: Service "
        if [ "$kinds" = "$want" ]; then echo "ok   kubectl kustomize renders the 5 objects"; P=$((P + 1))
        else echo "FAIL kubectl kustomize: got $kinds"; F=$((F + 1)); fi
    else
        echo "FAIL kubectl kustomize: $out"; F=$((F + 1))
    fi
else
    echo "SKIP kubectl kustomize: no kubectl >= 1.27 (the schemas above do not need one)"
    S=$((S + 1))
fi
echo "$P passed, $F failed, $S skipped"
[ "$F" -eq 0 ]
