# Shared by tests/deploy/test_*.sh (sourced).
#   deploy_python   a python3 that has PyYAML (the Kubernetes checks need it), or empty
#   deploy_npm_tools  installs tests/deploy/tools (npm ci, offline copy first) once; 0 when usable
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
TOOLS="$REPO/tests/deploy/tools"

deploy_python() {
    local py
    for py in python3 /usr/bin/python3; do
        if command -v "$py" >/dev/null 2>&1 && "$py" -c 'import yaml' >/dev/null 2>&1; then
            echo "$py"
            return 0
        fi
    done
    return 1
}

deploy_npm_tools() {
    command -v node >/dev/null 2>&1 || return 1
    if [ -f "$TOOLS/node_modules/.package-lock.json" ] &&
       [ "$TOOLS/node_modules/.package-lock.json" -nt "$TOOLS/package-lock.json" ]; then
        return 0
    fi
    command -v npm >/dev/null 2>&1 || return 1
    echo "installing tests/deploy/tools (npm ci)"
    (cd "$TOOLS" && { timeout 60 npm ci --offline --no-audit --no-fund --loglevel=error >/dev/null 2>&1 ||
                      timeout 240 npm ci --no-audit --no-fund --loglevel=error; }) || return 1
    [ -d "$TOOLS/node_modules/kubernetes-models" ]
}
