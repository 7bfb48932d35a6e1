#!/usr/bin/env python3
"""Checks that deploy/kubernetes-redis/ (the base with the Redis job store) fits edmd, its
Redis and KEDA (the schemas are checked by tools/k8s_schema.mjs).

    tests/deploy/check_kubernetes_redis.py [--repo DIR] [--edmd PATH]

  - the overlay: kustomization.yaml names the base and exactly the files of its folder;
    it deletes the base's HPA (KEDA makes its own: two autoscalers would fight);
  - the Service patch drops ClientIP affinity (any pod answers for any job);
  - the Deployment patch: its EDMD_* variables are edmd options that edmd accepts
    (--print-config), job-store is a redis:// URL of the Redis Service and port with no
    password in it, and the password file is a key of a mounted Secret;
  - Redis: AOF on with fsync always, no eviction, data on a persistent volume at its `dir`,
    the password from the same Secret, non-root, read-only root, no capabilities, probes;
  - the ScaledObject scales the Deployment on the stream and consumer group edmd uses
    (server/jobstore_redis.c), at the Redis Service's address and port, authenticated by a
    TriggerAuthentication of the same Secret, never below one pod, scaling down more slowly
    than up; its Prometheus trigger reads a series edmd exports.
Prints one line per check, closing with "N passed, N failed, N skipped".
"""
import argparse
import os
import re
import sys

import yaml

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import edmd_options  # noqa: E402
from check_dockerfile import Result  # noqa: E402
from check_kubernetes import exported_series, load_all, parse_folder  # noqa: E402


def source_constant(repo, name):
    """A #define of server/jobstore_redis.c ("edm:jobs" for QUEUE), or None."""
    try:
        with open(os.path.join(repo, "server", "jobstore_redis.c"), encoding="utf-8") as f:
            m = re.search(r'#define %s "([^"]+)"' % name, f.read())
        return m.group(1) if m else None
    except OSError:
        return None


def one(objs, kind):
    found = [d for d in objs if d.get("kind") == kind]
    return found[0] if len(found) == 1 else None


def container(pod_spec, name):
    cs = (pod_spec or {}).get("containers", [])
    return next((c for c in cs if c.get("name") == name), cs[0] if cs else {})


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    ap = argparse.ArgumentParser()
    ap.add_argument("--repo", default=os.path.normpath(os.path.join(here, "..", "..")))
    ap.add_argument("--edmd", default=None)
    a = ap.parse_args()
    repo = a.repo
    odir = os.path.join(repo, "deploy", "kubernetes-redis")
    edmd = a.edmd or os.path.join(repo, os.environ.get("BUILD", "build"), "edmd")
    R = Result()

    docs = parse_folder(R, odir, repo)
    kust = (docs.get("kustomization.yaml") or [{}])[0]
    patches = kust.get("patches", [])
    listed = set(kust.get("resources", [])) | {p["path"] for p in patches if "path" in p}
    R.ok("kustomization.yaml names the base and exactly the files of deploy/kubernetes-redis",
         "../kubernetes" in listed and listed - {"../kubernetes"} == set(docs) - {"kustomization.yaml"},
         f"{sorted(listed)} vs {sorted(docs)}")
    base_hpa = load_all(os.path.join(repo, "deploy", "kubernetes", "hpa.yaml"))[0]
    deleted = [yaml.safe_load(p["patch"]) for p in patches if "patch" in p]
    R.ok("the base's HPA is deleted (KEDA makes and owns the HPA)",
         any(d and d.get("$patch") == "delete" and d.get("kind") == base_hpa["kind"]
             and d.get("metadata", {}).get("name") == base_hpa["metadata"]["name"] for d in deleted))

    objs = [d for name, ds in docs.items() if name != "kustomization.yaml" for d in ds]
    svc_patch = next((d for d in objs if d.get("kind") == "Service" and d["metadata"]["name"] == "edmd"), {})
    spec = svc_patch.get("spec", {})
    R.ok("the Service patch drops ClientIP affinity (any pod answers for any job)",
         spec.get("sessionAffinity") == "None" and "sessionAffinityConfig" in spec and spec["sessionAffinityConfig"] is None)

    # --- Redis
    redis_svc = next((d for d in objs if d.get("kind") == "Service" and d["metadata"]["name"] != "edmd"), {})
    sts = one(objs, "StatefulSet") or {}
    rpod = sts.get("spec", {}).get("template", {}).get("spec", {})
    rc = container(rpod, "redis")
    rport = (redis_svc.get("spec", {}).get("ports") or [{}])[0].get("port")
    rname = redis_svc.get("metadata", {}).get("name")
    R.ok(f"the Redis Service ({rname}:{rport}) selects the Redis pods",
         bool(rname) and redis_svc.get("spec", {}).get("selector", {}).items() <=
         sts.get("spec", {}).get("template", {}).get("metadata", {}).get("labels", {}).items())
    rconf_map = next((d for d in objs if d.get("kind") == "ConfigMap"), {})
    conf = next(iter(rconf_map.get("data", {}).values()), "")
    settings = dict(re.findall(r"(?m)^\s*([a-z-]+)\s+(.*?)\s*$", conf))
    R.ok("Redis keeps every write: appendonly yes, appendfsync always", settings.get("appendonly") == "yes"
         and settings.get("appendfsync") == "always", str(settings))
    R.ok("Redis never evicts a job: maxmemory-policy noeviction", settings.get("maxmemory-policy") == "noeviction")
    mounts = {m["mountPath"].rstrip("/"): m["name"] for m in rc.get("volumeMounts", [])}
    claims = {t["metadata"]["name"] for t in sts.get("spec", {}).get("volumeClaimTemplates", [])}
    R.ok(f"Redis's dir ({settings.get('dir')}) is a persistent volume", mounts.get(settings.get("dir", "").rstrip("/")) in claims)
    r_env = {e["name"]: e for e in rc.get("env", [])}
    cmd = " ".join(rc.get("command", []) + rc.get("args", []))
    m = re.search(r"--requirepass \$\((\w+)\)", cmd)
    r_secret = r_env.get(m.group(1), {}).get("valueFrom", {}).get("secretKeyRef", {}) if m else {}
    R.ok("Redis takes its password from a Secret", bool(r_secret.get("name")), cmd)
    rsc, rpsc = rc.get("securityContext", {}), rpod.get("securityContext", {})
    R.ok("Redis: non-root, read-only root, no privilege escalation, every capability dropped",
         (rpsc.get("runAsNonRoot") or rsc.get("runAsNonRoot")) is True and rsc.get("readOnlyRootFilesystem") is True
         and rsc.get("allowPrivilegeEscalation") is False and "ALL" in rsc.get("capabilities", {}).get("drop", []))
    R.ok("Redis: readiness and liveness probes", "readinessProbe" in rc and "livenessProbe" in rc)

    # --- edmd
    dep_patch = one(objs, "Deployment") or {}
    pod = dep_patch.get("spec", {}).get("template", {}).get("spec", {})
    c = container(pod, "edmd")
    env = {e["name"]: e.get("value") for e in c.get("env", [])}
    opts = edmd_options.table_options(repo)
    bad = [k for k in env if k.startswith("EDMD_") and edmd_options.env_to_option(k, opts) is None]
    R.ok("every EDMD_* variable of the patch is an edmd option", not bad, str(bad))
    url = env.get("EDMD_JOB_STORE", "")
    um = re.match(r"redis://([^:/@]+):(\d+)(/\d+)?$", url)
    R.ok(f"job-store ({url}) is the Redis Service and its port, with no password in the URL",
         bool(um) and um.group(1) == rname and int(um.group(2)) == rport)
    pw = env.get("EDMD_JOB_STORE_PASSWORD_FILE", "")
    vols = {v["name"]: v for v in pod.get("volumes", [])}
    emounts = {m["mountPath"].rstrip("/"): m["name"] for m in c.get("volumeMounts", [])}
    secret = vols.get(emounts.get(os.path.dirname(pw)), {}).get("secret", {})
    items = {i["path"]: i["key"] for i in secret.get("items", [])}
    R.ok(f"the password file ({pw}) is the Redis password's key of a mounted Secret",
         secret.get("secretName") == r_secret.get("name") and items.get(os.path.basename(pw)) == r_secret.get("key"))
    try:
        real = edmd_options.print_config(edmd, None, {k: v for k, v in env.items() if v is not None})
        if real is None:
            R.skip("edmd accepts the patch's environment (--print-config)", f"{edmd} not built")
        else:
            R.ok("edmd accepts the patch's environment (--print-config)", real.get("job-store") == url,
                 f"job-store = {real.get('job-store')}")
    except ValueError as e:
        R.ok("edmd accepts the patch's environment (--print-config)", False, str(e))

    # --- KEDA
    so = one(objs, "ScaledObject") or {}
    ss = so.get("spec", {})
    ref = ss.get("scaleTargetRef", {})
    R.ok("the ScaledObject scales the Deployment edmd", ref.get("name") == dep_patch.get("metadata", {}).get("name")
         and ref.get("kind", "Deployment") == "Deployment")
    R.ok("never below one pod (synchronous traffic needs one)", ss.get("minReplicaCount", 0) >= 1
         and ss.get("maxReplicaCount", 100) >= ss.get("minReplicaCount", 0))
    beh = ss.get("advanced", {}).get("horizontalPodAutoscalerConfig", {}).get("behavior", {})
    R.ok("scale-down is slower than scale-up", beh.get("scaleDown", {}).get("stabilizationWindowSeconds", 300) >
         beh.get("scaleUp", {}).get("stabilizationWindowSeconds", 0))
    trig = {t.get("type"): t for t in ss.get("triggers", [])}
    rs = trig.get("redis-streams", {})
    md = rs.get("metadata", {})
    queue, group = source_constant(repo, "QUEUE"), source_constant(repo, "GROUP")
    R.ok(f"the redis-streams trigger reads edmd's queue ({queue}) and group ({group})",
         md.get("stream") == queue and md.get("consumerGroup") == group and queue is not None, str(md))
    am = re.match(r"([^.:]+)(\.[^:]+)?:(\d+)$", md.get("address", ""))
    R.ok(f"... at the Redis Service's address and port ({md.get('address')})",
         bool(am) and am.group(1) == rname and int(am.group(3)) == rport)
    R.ok("... on the stream's length (unfinished jobs) per pod", str(md.get("streamLength", "")).isdigit()
         and int(md["streamLength"]) > 0)
    ta = next((d for d in objs if d.get("kind") == "TriggerAuthentication"
               and d["metadata"]["name"] == rs.get("authenticationRef", {}).get("name")), {})
    refs = {r.get("parameter"): r for r in ta.get("spec", {}).get("secretTargetRef", [])}
    R.ok("... authenticated with the Redis password's Secret", refs.get("password", {}).get("name") == r_secret.get("name")
         and refs.get("password", {}).get("key") == r_secret.get("key"))
    prom = trig.get("prometheus")
    if prom:
        q = prom.get("metadata", {}).get("query", "")
        names = set(re.findall(r"\b(edm_[a-z0-9_]+)", q))
        R.ok(f"the prometheus trigger reads series edmd exports ({sorted(names)})",
             bool(names) and names <= exported_series(repo))
    print(f"{R.passed} passed, {R.failed} failed, {R.skipped} skipped")
    return 1 if R.failed else 0


if __name__ == "__main__":
    sys.exit(main())
