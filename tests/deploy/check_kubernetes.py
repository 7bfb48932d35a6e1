#!/usr/bin/env python3
"""Checks that deploy/kubernetes/ fits edmd and the image (the schemas are checked by
tools/k8s_schema.mjs).

    tests/deploy/check_kubernetes.py [--repo DIR] [--edmd PATH] [--model FILE]

  - every manifest parses; kustomization.yaml lists exactly the manifests of the folder;
  - selectors: the Deployment's matches its pod labels, the Service's and the PDB's select
    those pods, the HPA scales that Deployment;
  - edmd's configuration: the ConfigMap's edmd.conf has only real options and is accepted by
    edmd itself (--print-config), is mounted where EDMD_CONFIG points, sets nothing the
    image's environment overrides, listens on 0.0.0.0 at the containerPort, names a bundled
    model; container flags and EDMD_* variables are real;
  - probes: liveness /healthz, readiness /readyz, a startup probe for loading, all on the
    container port of edmd's admin listener (its own connection budget: a flood of the API
    port cannot fail them), which the Service does not expose, and those paths are admin
    routes of edmd; the scrape annotations name /metrics on that port;
  - floods: per-ip-connection-limit set explicitly, at or above what one balancer in front
    may need (max-queue + max-batch), header-timeout set and non-zero;
  - drain: terminationGracePeriodSeconds >= preStop sleep + drain-timeout + edmd's answer
    flush (5 s) + 1; the Service drops a pod before edmd refuses work (preStop > 0);
  - resources: requests and limits for cpu and memory, nvidia.com/gpu: 1 in limits;
  - security: non-root with the image's numeric user, read-only root filesystem, no
    privilege escalation, every capability dropped, a RuntimeDefault seccomp profile;
  - the HPA: no CPU metric, Pods metrics that the adapter rules define from series edmd
    exports, a slower scale-down than scale-up;
  - live (with a built edmd and a small model): edmd started with the ConfigMap's file
    answers the probe paths as the probes expect, /metrics has the HPA's source series,
    and SIGTERM ends it with exit 0 within the grace period.
Prints one line per check, closing with "N passed, N failed, N skipped".
"""
import argparse
import glob
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request

import yaml

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import edmd_options  # noqa: E402
from check_dockerfile import Result, build_stages, parse_dockerfile  # noqa: E402

FLUSH_S = 5  # edmd waits up to 5 s for answers to go out after the drain (server/main.c)


def load_all(path):
    with open(path, encoding="utf-8") as f:
        return [d for d in yaml.safe_load_all(f) if d]


def parse_folder(R, folder, repo):
    """{file name: [documents]} of the folder's *.yaml, one check per file that it parses."""
    docs = {}
    for f in sorted(glob.glob(os.path.join(folder, "*.yaml"))):
        try:
            docs[os.path.basename(f)] = load_all(f)
            R.ok(f"{os.path.relpath(f, repo)} parses", True)
        except yaml.YAMLError as e:
            R.ok(f"{os.path.relpath(f, repo)} parses", False, str(e).splitlines()[0])
    return docs


def quantity(q):
    """A Kubernetes quantity as a float (cpu '500m' -> 0.5, memory '4Gi' -> bytes)."""
    s = str(q)
    units = {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "m": 1e-3, "k": 1e3, "M": 1e6,
             "G": 1e9, "T": 1e12}
    for u, f in units.items():
        if s.endswith(u):
            return float(s[:-len(u)]) * f
    return float(s)


def subset(sel, labels):
    return bool(sel) and all(labels.get(k) == v for k, v in sel.items())


def find_port(container, ref):
    for p in container.get("ports", []):
        if ref == p.get("name") or ref == p.get("containerPort"):
            return p.get("containerPort")
    return None


def routes(repo, admin=False):
    """The fixed GET paths of edmd's route table (server/routes.c); admin: only those the
    admin listener serves (flag ADMIN)."""
    try:
        with open(os.path.join(repo, "server", "routes.c"), encoding="utf-8") as f:
            rows = re.findall(r'\{\s*GET,\s*"(/[a-z0-9/._-]*)",\s*([A-Z_| ]*?),', f.read())
    except OSError:
        return set()
    return {p for p, flags in rows if not admin or "ADMIN" in flags}


def exported_series(repo):
    """Metric names edmd's /metrics renders (server/metrics.c)."""
    try:
        with open(os.path.join(repo, "server", "metrics.c"), encoding="utf-8") as f:
            src = f.read()
    except OSError:
        return set()
    return set(re.findall(r'"(edm_[a-z0-9_]+)"', src)) | set(re.findall(r"# TYPE (edm_[a-z0-9_]+)", src))


def http_get(url, timeout=2.0):
    try:
        with urllib.request.urlopen(url, timeout=timeout) as r:
            return r.status, r.read().decode("utf-8", "replace")
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode("utf-8", "replace")
    except (urllib.error.URLError, OSError):
        return None, ""


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    ap = argparse.ArgumentParser()
    ap.add_argument("--repo", default=os.path.normpath(os.path.join(here, "..", "..")))
    ap.add_argument("--edmd", default=None)
    ap.add_argument("--model", default=os.environ.get("EDM_DEPLOY_MODEL"))
    a = ap.parse_args()
    repo = a.repo
    kdir = os.path.join(repo, "deploy", "kubernetes")
    edmd = a.edmd or os.path.join(repo, os.environ.get("BUILD", "build"), "edmd")
    R = Result()

    # --- parse
    objs = {}
    files = sorted(glob.glob(os.path.join(kdir, "*.yaml")))
    for name, docs in parse_folder(R, kdir, repo).items():
        for d in docs:
            objs.setdefault(d.get("kind"), []).append((name, d))
    kust = [d for _, d in objs.get("Kustomization", [])]
    manifests = {os.path.basename(f) for f in files} - {"kustomization.yaml"}
    R.ok("kustomization.yaml lists exactly the manifests of deploy/kubernetes",
         len(kust) == 1 and set(kust[0].get("resources", [])) == manifests,
         f"{sorted(kust[0].get('resources', [])) if kust else None} vs {sorted(manifests)}")
    for kind in ("Deployment", "Service", "ConfigMap", "PodDisruptionBudget", "HorizontalPodAutoscaler"):
        R.ok(f"one {kind}", len(objs.get(kind, [])) == 1)
    try:
        dep = objs["Deployment"][0][1]
        svc = objs["Service"][0][1]
        cm = objs["ConfigMap"][0][1]
        pdb = objs["PodDisruptionBudget"][0][1]
        hpa = objs["HorizontalPodAutoscaler"][0][1]
    except (KeyError, IndexError):
        print(f"{R.passed} passed, {R.failed + 1} failed, {R.skipped} skipped")
        return 1

    spec = dep["spec"]
    tmpl = spec["template"]
    pod = tmpl["spec"]
    plabels = tmpl.get("metadata", {}).get("labels", {})
    containers = pod.get("containers", [])
    c = next((x for x in containers if x.get("name") == "edmd"), containers[0] if containers else {})

    # --- selectors and names
    R.ok("Deployment selector matches its pod labels", subset(spec["selector"].get("matchLabels"), plabels))
    R.ok("Service selects the pods", subset(svc["spec"].get("selector"), plabels))
    R.ok("PodDisruptionBudget selects the pods", subset(pdb["spec"].get("selector", {}).get("matchLabels"), plabels))
    R.ok("PodDisruptionBudget allows a voluntary eviction (a node can drain)",
         "maxUnavailable" in pdb["spec"] and str(pdb["spec"]["maxUnavailable"]) not in ("0", "0%"))
    ref = hpa["spec"]["scaleTargetRef"]
    R.ok("HPA scales the Deployment", ref.get("kind") == "Deployment" and ref.get("name") ==
         dep["metadata"]["name"] and ref.get("apiVersion") == "apps/v1")
    if kust:
        imgs = {i["name"] for i in kust[0].get("images", [])}
        R.ok("the container image is the one kustomization.yaml retags",
             c.get("image", "").split(":")[0] in imgs, f"{c.get('image')} vs {imgs}")

    # --- the image (Dockerfile): its user and environment
    with open(os.path.join(repo, "Dockerfile"), encoding="utf-8") as f:
        _, stages = build_stages(parse_dockerfile(f.read()))
    cuda = stages[-1]
    image_env = cuda.env
    user = cuda.last("USER").rest.split(":")[0] if cuda.last("USER") else "0"

    # --- edmd configuration
    opts = edmd_options.table_options(repo)
    key = None
    env = {e["name"]: e.get("value") for e in c.get("env", [])}
    cpath = env.get("EDMD_CONFIG", image_env.get("EDMD_CONFIG"))
    mounts = {m["mountPath"].rstrip("/"): m for m in c.get("volumeMounts", [])}
    vol_ok = False
    if cpath:
        d, key = os.path.split(cpath)
        m = mounts.get(d)
        vols = {v["name"]: v for v in pod.get("volumes", [])}
        v = vols.get(m["name"]) if m else None
        vol_ok = bool(v and v.get("configMap", {}).get("name") == cm["metadata"]["name"]
                      and key in cm.get("data", {}))
    R.ok(f"EDMD_CONFIG ({cpath}) is the ConfigMap's edmd.conf, mounted read-only", vol_ok
         and mounts[os.path.dirname(cpath)].get("readOnly") is True)
    conf = cm.get("data", {}).get(key or "edmd.conf", "")
    entries = edmd_options.parse_conf_text(conf)
    bad = [f"line {k}: {n}" for k, n, _ in entries if n is None or n not in opts or n == "config"]
    R.ok("every key of the ConfigMap's edmd.conf is an edmd option", not bad, "; ".join(bad))
    shadowed = [n for _, n, _ in entries if n and edmd_options.env_name(n) in {**image_env, **env}
                and n != "config"]
    R.ok("the ConfigMap sets nothing the image's or pod's EDMD_* variables override", not shadowed,
         f"{shadowed} are overridden by the environment")
    bad_env = [k for k in env if k.startswith("EDMD_") and edmd_options.env_to_option(k, opts) is None]
    R.ok("every EDMD_* variable of the pod is an edmd option", not bad_env, str(bad_env))
    args = (c.get("command") or [])[1:] + (c.get("args") or [])
    if c.get("command"):
        R.ok("the container command is edmd", os.path.basename(c["command"][0]) == "edmd")
    errs = edmd_options.check_flags(args, opts)
    R.ok("the container's flags are real edmd flags", not errs, "; ".join(errs))
    full_env = {k: v for k, v in {**image_env, **env}.items() if k != "EDMD_CONFIG"}
    eff = edmd_options.effective(opts, conf, full_env, args)
    with tempfile.NamedTemporaryFile("w", suffix=".conf", delete=False) as tf:
        tf.write(conf)
        conf_file = tf.name
    try:
        try:
            real = edmd_options.print_config(edmd, conf_file, full_env, args)
            if real is None:
                R.skip("edmd accepts the ConfigMap's file (--print-config)", f"{edmd} not built")
            else:
                R.ok("edmd accepts the ConfigMap's file (--print-config)", True)
                for k in ("host", "port", "drain-timeout", "backend"):
                    if str(real.get(k)) != str(eff.get(k)):
                        R.ok(f"computed {k} agrees with edmd", False, f"{eff.get(k)} vs {real.get(k)}")
                eff.update({k: v for k, v in real.items() if not isinstance(eff.get(k), list)})
        except ValueError as e:
            R.ok("edmd accepts the ConfigMap's file (--print-config)", False, str(e))
        R.ok("edmd listens on 0.0.0.0", eff.get("host") == "0.0.0.0", f"host = {eff.get('host')}")
        port = int(eff.get("port", 0))
        http_port = find_port(c, "http")
        R.ok(f"containerPort 'http' = edmd's port ({port})", http_port == port, f"containerPort {http_port}")
        tp = svc["spec"]["ports"][0].get("targetPort")
        R.ok("the Service targets that port", find_port(c, tp) == port, f"targetPort {tp}")
        model = (eff.get("model") or [""])[0].split("=", 1)[-1]
        rel = os.path.relpath(model, "/opt/edm-serve") if model.startswith("/opt/edm-serve/models/") else None
        R.ok("the model is one the image bundles (/opt/edm-serve/models/ = models/)", rel is not None, model)
        if rel:
            R.ok(f"{rel} exists", os.path.isfile(os.path.join(repo, rel)), "the image bundles it")
        drain = float(eff.get("drain-timeout", 30))

        # --- probes, on the admin listener
        known = routes(repo, admin=True)
        R.ok("server/routes.c admin routes parsed", {"/healthz", "/readyz", "/metrics"} <= known, str(known))
        admin = int(eff.get("admin-port", -1))
        admin_host = eff.get("admin-host") or eff.get("host")
        R.ok(f"edmd's admin listener is on (admin-port = {admin}) on 0.0.0.0 (the kubelet probes the pod IP)",
             admin > 0 and admin_host == "0.0.0.0", f"admin-host = {admin_host}")
        admin_name = next((p.get("name") for p in c.get("ports", []) if p.get("containerPort") == admin), None)
        R.ok(f"a containerPort is the admin port ({admin_name} = {admin})", admin_name is not None)
        R.ok("the Service does not expose the admin port",
             all(find_port(c, p.get("targetPort")) != admin for p in svc["spec"]["ports"]))

        def probe(name, path):
            p = c.get(name)
            g = (p or {}).get("httpGet", {})
            okp = bool(p) and g.get("path") == path and find_port(c, g.get("port")) == admin
            R.ok(f"{name}: GET {path} on edmd's admin port", okp and path in known, str(g))
            return p or {}
        probe("livenessProbe", "/healthz")
        rp = probe("readinessProbe", "/readyz")
        sp = c.get("startupProbe") or {}
        sg = sp.get("httpGet", {})
        R.ok("startupProbe: GET /readyz or /healthz on edmd's admin port", sg.get("path") in ("/readyz", "/healthz")
             and find_port(c, sg.get("port")) == admin)
        budget = sp.get("periodSeconds", 10) * sp.get("failureThreshold", 3)
        R.ok(f"startupProbe allows at least 60 s for model loading ({budget} s)", budget >= 60)
        R.ok("readiness notices a drain within 10 s",
             rp.get("periodSeconds", 10) * rp.get("failureThreshold", 3) <= 10)
        ann = tmpl.get("metadata", {}).get("annotations", {})
        R.ok("scrape annotations: /metrics on edmd's admin port", ann.get("prometheus.io/path") == "/metrics"
             and str(ann.get("prometheus.io/port")) == str(admin) and ann.get("prometheus.io/scrape") == "true")

        # --- floods
        set_here = {nm for _, nm, _ in entries}
        per_ip = int(eff.get("per-ip-connection-limit", 0))
        need_ip = int(eff.get("max-queue", 256)) + int(eff.get("max-batch", 32))
        R.ok(f"per-ip-connection-limit is set explicitly and 0 or >= max-queue + max-batch ({per_ip} vs {need_ip}):"
             " an ingress funnels many clients through a few addresses",
             "per-ip-connection-limit" in set_here and (per_ip == 0 or per_ip >= need_ip))
        R.ok("header-timeout is set explicitly and not 0 (slow clients are closed)",
             "header-timeout" in set_here and float(eff.get("header-timeout", 0)) > 0)

        # --- drain
        pre = c.get("lifecycle", {}).get("preStop", {})
        pre_s = 0
        if "exec" in pre:
            cmd = pre["exec"].get("command", [])
            if len(cmd) == 2 and cmd[0] == "sleep":
                pre_s = float(cmd[1])
        elif "sleep" in pre:
            pre_s = float(pre["sleep"].get("seconds", 0))
        R.ok(f"preStop waits for the endpoints to drop the pod ({pre_s:g} s)", 0 < pre_s <= 30)
        tgps = pod.get("terminationGracePeriodSeconds", 30)
        need = pre_s + drain + FLUSH_S + 1
        R.ok(f"terminationGracePeriodSeconds {tgps} >= preStop {pre_s:g} + drain-timeout {drain:g} + "
             f"flush {FLUSH_S} + 1", tgps >= need)
        R.ok("rolling update keeps every ready pod until its successor is ready (maxUnavailable 0)",
             str(spec.get("strategy", {}).get("rollingUpdate", {}).get("maxUnavailable")) == "0")

        # --- resources
        res = c.get("resources", {})
        req, lim = res.get("requests", {}), res.get("limits", {})
        R.ok("requests and limits for cpu and memory", all(k in req and k in lim for k in ("cpu", "memory")))
        R.ok("limits >= requests", all(quantity(lim[k]) >= quantity(req[k]) for k in req if k in lim))
        R.ok("nvidia.com/gpu: 1 (limits; requests equal if given)", str(lim.get("nvidia.com/gpu")) == "1"
             and str(req.get("nvidia.com/gpu", 1)) == "1")
        R.ok("the image's EDMD_BACKEND is cuda (a GPU pod never falls back to CPU silently)",
             full_env.get("EDMD_BACKEND") == "cuda" or eff.get("backend") == "cuda")

        # --- security
        psc, csc = pod.get("securityContext", {}), c.get("securityContext", {})
        R.ok("runAsNonRoot", psc.get("runAsNonRoot") is True or csc.get("runAsNonRoot") is True)
        uid = csc.get("runAsUser", psc.get("runAsUser"))
        R.ok(f"runAsUser is the image's user ({user})", str(uid) == user, f"runAsUser {uid}")
        R.ok("readOnlyRootFilesystem", csc.get("readOnlyRootFilesystem") is True)
        R.ok("allowPrivilegeEscalation: false", csc.get("allowPrivilegeEscalation") is False)
        R.ok("capabilities drop ALL", "ALL" in csc.get("capabilities", {}).get("drop", []))
        R.ok("seccomp RuntimeDefault", psc.get("seccompProfile", csc.get("seccompProfile", {})).get("type")
             == "RuntimeDefault")
        R.ok("no service account token in the pod", pod.get("automountServiceAccountToken") is False)

        # --- HPA and the adapter
        hs = hpa["spec"]
        metrics = hs.get("metrics", [])
        R.ok("HPA: no CPU or memory metric", not any(m.get("type") in ("Resource", "ContainerResource")
                                                      for m in metrics))
        names = [m.get("pods", {}).get("metric", {}).get("name") for m in metrics if m.get("type") == "Pods"]
        R.ok("HPA: Pods metrics, edm_queue_depth first", names[:1] == ["edm_queue_depth"] and
             len(names) == len(metrics), str(names))
        R.ok("HPA: 1 <= minReplicas <= maxReplicas", 1 <= hs.get("minReplicas", 1) <= hs["maxReplicas"])
        beh = hs.get("behavior", {})
        R.ok("HPA: scale-down is slower than scale-up",
             beh.get("scaleDown", {}).get("stabilizationWindowSeconds", 300) >
             beh.get("scaleUp", {}).get("stabilizationWindowSeconds", 0))
        try:
            rules = load_all(os.path.join(kdir, "prometheus-adapter", "values.yaml"))[0]["rules"]["custom"]
        except (OSError, KeyError, IndexError, TypeError, yaml.YAMLError) as e:
            rules = []
            R.ok("prometheus-adapter/values.yaml parses", False, str(e))
        served = {r.get("name", {}).get("as"): r for r in rules}
        series = exported_series(repo)
        for n in names:
            r = served.get(n)
            src = re.match(r"\s*([a-z_:][a-z0-9_:]*)", r.get("seriesQuery", "")).group(1) if r else None
            R.ok(f"adapter rule serves {n} from a series edmd exports ({src})", bool(r) and src in series)
            if r:
                R.ok(f"adapter rule {n} maps namespace and pod", set(r.get("resources", {}).get("overrides", {}))
                     >= {"namespace", "pod"})

        # --- live: edmd with the ConfigMap's file
        live(R, edmd, conf, full_env, args, a.model, repo, c, tgps, pre_s, names, served)
    finally:
        os.unlink(conf_file)
    print(f"{R.passed} passed, {R.failed} failed, {R.skipped} skipped")
    return 1 if R.failed else 0


def small_model(repo, given):
    if given and os.path.isfile(given):
        return given
    for pref in ("edm_songunet_gray8", "vp_songunet_1level_gray", "edm_dhariwal_uncond_gray8"):
        p = os.path.join(repo, "tests", "vectors", pref, "model.safetensors")
        if os.path.isfile(p):
            return p
    found = sorted(glob.glob(os.path.join(repo, "tests", "vectors", "*", "model.safetensors")),
                   key=os.path.getsize)
    return found[0] if found else None


def live(R, edmd, conf, env, args, model, repo, c, tgps, pre_s, hpa_metrics, served):
    model = small_model(repo, model)
    if not os.access(edmd, os.X_OK) or not model:
        R.skip("live: edmd with the ConfigMap's configuration", "needs a built edmd and a small model "
               "(tests/vectors/*/model.safetensors or EDM_DEPLOY_MODEL)")
        return
    with tempfile.TemporaryDirectory() as tmp:
        # the ConfigMap's file with what cannot work here replaced: loopback, any port, the
        # small model, the CPU backend
        lines = [ln for ln in conf.splitlines() if not re.match(
            r"\s*(host|port|model|backend|devices|precision|port-file|admin-host|admin-port|admin-port-file)\s*=", ln)]
        lines += ["host = 127.0.0.1", "port = 0", f"port-file = {tmp}/port", f"model = {model}",
                  "compute-threads = 1", "max-batch = 8", "admin-port = 0", f"admin-port-file = {tmp}/admin-port"]
        cf = os.path.join(tmp, "edmd.conf")
        with open(cf, "w") as f:
            f.write("\n".join(lines) + "\n")
        e = {k: v for k, v in os.environ.items() if not k.startswith("EDMD_")}
        e.update({k: v for k, v in env.items() if k != "EDMD_BACKEND"})
        e.update({"EDMD_CONFIG": cf, "EDMD_BACKEND": "cpu", "OMP_NUM_THREADS": "1"})
        log = open(os.path.join(tmp, "log"), "w+")
        proc = subprocess.Popen([edmd] + args, env=e, stdout=log, stderr=subprocess.STDOUT)
        try:
            port = admin = None
            t0 = time.time()
            while time.time() - t0 < 20 and proc.poll() is None:
                try:
                    with open(os.path.join(tmp, "port")) as f:
                        port = int(f.read().strip())
                    with open(os.path.join(tmp, "admin-port")) as f:
                        admin = int(f.read().strip())
                    break
                except (OSError, ValueError):
                    time.sleep(0.05)
            if port is None or admin is None:
                log.seek(0)
                R.ok("live: edmd starts with the ConfigMap's configuration", False, log.read()[-500:])
                return
            R.ok("live: edmd starts with the ConfigMap's configuration", True)
            base = f"http://127.0.0.1:{admin}"  # the probes' and the scrape's listener
            st = None
            while time.time() - t0 < 30:
                st, _ = http_get(base + c["startupProbe"]["httpGet"]["path"])
                if st == 200:
                    break
                time.sleep(0.1)
            R.ok(f"live: the startup probe's {c['startupProbe']['httpGet']['path']} turns 200 once loaded "
                 f"({time.time() - t0:.1f} s)", st == 200)
            for name in ("livenessProbe", "readinessProbe"):
                path = c[name]["httpGet"]["path"]
                st, _ = http_get(base + path)
                R.ok(f"live: {name} {path} answers 200 on the admin port", st == 200, f"status {st}")
            st, _ = http_get(base + "/v1/models")
            R.ok("live: the admin port serves nothing but probes and metrics (/v1/models 404)", st == 404,
                 f"status {st}")
            st, text = http_get(base + "/metrics")
            have = set(re.findall(r"(?m)^(edm_[a-z0-9_]+)", text))
            for n in hpa_metrics:
                src = re.match(r"\s*([a-z_:][a-z0-9_:]*)", served.get(n, {}).get("seriesQuery", "x"))
                R.ok(f"live: /metrics exports {src.group(1) if src else '?'} (HPA {n})",
                     st == 200 and src is not None and src.group(1) in have)
            proc.send_signal(signal.SIGTERM)
            t1 = time.time()
            st, _ = None, None
            # readiness turns 503 at once while edmd drains (nothing in flight: it exits quickly)
            try:
                rc = proc.wait(timeout=max(1, tgps - pre_s))
            except subprocess.TimeoutExpired:
                rc = None
            R.ok(f"live: SIGTERM ends edmd with exit 0 within the grace period ({time.time() - t1:.2f} s)",
                 rc == 0, f"exit {rc}")
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
            log.close()


if __name__ == "__main__":
    sys.exit(main())
