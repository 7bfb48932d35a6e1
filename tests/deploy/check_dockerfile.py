#!/usr/bin/env python3
"""Lints the Dockerfile and .dockerignore without a Docker engine.

    tests/deploy/check_dockerfile.py [--repo DIR] [--edmd PATH] [--dockerfile F] [--build]

What an engine-free check can prove:
  - syntax: known instructions, continuation lines, JSON (exec) forms, stage names unique,
    every --from names an earlier stage, every ${ARG} in FROM declared before the first FROM;
  - the build context: every COPY source exists, is tracked by git and is not dropped by
    .dockerignore (whose rules are evaluated as Docker evaluates them);
  - the build stages run Makefile targets that exist (make -n in a copy of exactly the
    context the stage copies, with the stage's variables), the CUDA one with CUDA=1, both
    the same targets, and each runtime stage copies the files those targets produce;
    they install exactly the build set of deps/debian.txt (the list make and .ci/run read);
    with --build the CPU stage's make really runs in that copy;
  - the CUDA stages: devel image to build, runtime image (cuBLAS) of the same CUDA and OS
    version to run; the CPU runtime installs a Debian package for every shared library a
    CPU edmd links (ldd + dpkg -S of a built edmd), and those packages exist in Debian;
  - the runtime stages: non-root numeric USER, EXPOSE = EDMD_PORT (and the admin port),
    an admin listener reachable from inside the container, HEALTHCHECK on /healthz at the
    admin port (a flood of the API port cannot fail it), the per-address connection limit
    set explicitly, exec-form ENTRYPOINT of the copied edmd, SIGTERM as the stop signal, every
    EDMD_* variable and every flag a real edmd option (server/config.c, and edmd --help
    when built), EDMD_MODEL pointing at a bundled model that exists in models/.
Prints one line per check and closes with "N passed, N failed, N skipped".
"""
import argparse
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import edmd_options  # noqa: E402

INSTRUCTIONS = {"FROM", "RUN", "CMD", "LABEL", "MAINTAINER", "EXPOSE", "ENV", "ADD", "COPY",
                "ENTRYPOINT", "VOLUME", "USER", "WORKDIR", "ARG", "ONBUILD", "STOPSIGNAL",
                "HEALTHCHECK", "SHELL"}
BASE_LIBS = {"libc6", "libgcc-s1", "libstdc++6", "libzstd1", "zlib1g", "libgcc1"}  # in every base image


class Result:
    def __init__(self):
        self.passed = self.failed = self.skipped = 0

    def ok(self, name, cond, detail=""):
        if cond:
            self.passed += 1
            print(f"ok   {name}")
        else:
            self.failed += 1
            print(f"FAIL {name}" + (f": {detail}" if detail else ""))
        return cond

    def skip(self, name, why):
        self.skipped += 1
        print(f"SKIP {name}: {why}")


# ------------------------------------------------------------------------------ parsing
class Instr:
    def __init__(self, line, keyword, rest):
        self.line, self.keyword, self.rest = line, keyword, rest
        self.flags = {}
        self.args = rest
        if keyword in ("COPY", "ADD", "FROM", "RUN", "HEALTHCHECK"):
            toks = rest.split()
            k = 0
            while k < len(toks) and toks[k].startswith("--"):
                name, _, val = toks[k][2:].partition("=")
                self.flags[name] = val
                k += 1
            # keep the remainder verbatim (after the flags)
            s = rest
            for _ in range(k):
                s = s.lstrip()
                s = s[len(s.split(None, 1)[0]):]
            self.args = s.strip()

    def exec_form(self):
        s = self.args.strip()
        if not s.startswith("["):
            return None
        try:
            v = json.loads(s)
        except ValueError:
            return None
        return v if isinstance(v, list) and all(isinstance(x, str) for x in v) else None


def parse_dockerfile(text):
    """List of Instr; raises ValueError on syntax errors."""
    escape = "\\"
    lines = text.split("\n")
    out = []
    i = 0
    in_directives = True
    while i < len(lines):
        raw = lines[i]
        start = i + 1
        i += 1
        s = raw.strip()
        if in_directives:
            m = re.match(r"#\s*([a-zA-Z]+)\s*=\s*(\S+)\s*$", s)
            if m and m.group(1).lower() in ("syntax", "escape", "check"):
                if m.group(1).lower() == "escape":
                    escape = m.group(2)
                continue
            in_directives = False
        if not s or s.startswith("#"):
            continue
        buf = raw.rstrip()
        while buf.endswith(escape):
            buf = buf[:-1]
            # comment and empty lines inside a continuation are skipped, as Docker does
            while i < len(lines) and (lines[i].strip().startswith("#") or not lines[i].strip()):
                i += 1
            if i >= len(lines):
                raise ValueError(f"line {start}: continuation at end of file")
            buf += " " + lines[i].rstrip()
            i += 1
        parts = buf.strip().split(None, 1)
        kw = parts[0].upper()
        if kw not in INSTRUCTIONS:
            raise ValueError(f"line {start}: unknown instruction '{parts[0]}'")
        out.append(Instr(start, kw, parts[1] if len(parts) > 1 else ""))
    return out


class Stage:
    def __init__(self, index, image, name, line):
        self.index, self.image, self.name, self.line = index, image, name, line
        self.instrs = []
        self.env = {}
        self.workdir = "/"

    def first(self, kw):
        for x in self.instrs:
            if x.keyword == kw:
                return x
        return None

    def last(self, kw):
        r = None
        for x in self.instrs:
            if x.keyword == kw:
                r = x
        return r

    def all(self, kw):
        return [x for x in self.instrs if x.keyword == kw]


def parse_env(rest):
    """ENV k=v k2="v 2" (or the legacy 'ENV k v')."""
    toks = shlex.split(rest, posix=True)
    if toks and "=" not in toks[0]:
        return {toks[0]: " ".join(toks[1:])}
    env = {}
    for t in toks:
        k, _, v = t.partition("=")
        env[k] = v
    return env


def build_stages(instrs):
    global_args = {}
    stages = []
    for ins in instrs:
        if ins.keyword == "ARG" and not stages:
            k, _, v = ins.rest.partition("=")
            global_args[k.strip()] = v.strip()
            continue
        if ins.keyword == "FROM":
            toks = ins.args.split()
            name = toks[2] if len(toks) == 3 and toks[1].upper() == "AS" else None
            stages.append(Stage(len(stages), toks[0], name, ins.line))
            continue
        if not stages:
            raise ValueError(f"line {ins.line}: {ins.keyword} before the first FROM")
        st = stages[-1]
        st.instrs.append(ins)
        if ins.keyword == "ENV":
            st.env.update(parse_env(ins.rest))
        if ins.keyword == "WORKDIR":
            st.workdir = os.path.normpath(os.path.join(st.workdir, ins.rest.strip()))
    return global_args, stages


def expand(s, args):
    def sub(m):
        k = m.group(1) or m.group(2)
        return args.get(k, "")
    return re.sub(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}|\$([A-Za-z_][A-Za-z0-9_]*)", sub, s)


# ------------------------------------------------------------------------ .dockerignore
def dockerignore_rules(path):
    rules = []
    if not os.path.exists(path):
        return rules
    with open(path, encoding="utf-8") as f:
        for line in f:
            s = line.strip()
            if not s or s.startswith("#"):
                continue
            neg = s.startswith("!")
            if neg:
                s = s[1:].strip()
            s = os.path.normpath(s.lstrip("/")).replace(os.sep, "/")
            if s == ".":
                continue
            rules.append((neg, pattern_regex(s)))
    return rules


def pattern_regex(p):
    """Go's filepath.Match plus Docker's '**' (any number of path elements)."""
    r = ""
    i = 0
    while i < len(p):
        c = p[i]
        if c == "*":
            if p[i:i + 2] == "**":
                i += 2
                if p[i:i + 1] == "/":
                    i += 1
                    r += "(?:.*/)?"
                else:
                    r += ".*"
                continue
            r += "[^/]*"
        elif c == "?":
            r += "[^/]"
        elif c == "[":
            j = p.find("]", i)
            if j < 0:
                r += re.escape(c)
            else:
                cls = p[i + 1:j]
                if cls.startswith("^") or cls.startswith("!"):
                    cls = "^" + cls[1:]
                r += "[" + cls + "]"
                i = j
        elif c == "\\" and i + 1 < len(p):
            i += 1
            r += re.escape(p[i])
        else:
            r += re.escape(c)
        i += 1
    return re.compile("^" + r + "$")


def excluded(relpath, rules):
    """Docker's rule: the last matching pattern wins; a pattern matches a path or any of its
    parent folders."""
    parts = relpath.split("/")
    candidates = ["/".join(parts[:k]) for k in range(1, len(parts) + 1)]
    result = False
    for neg, rx in rules:
        if any(rx.match(c) for c in candidates):
            result = not neg
    return result


# ------------------------------------------------------------------------------ helpers
def git_files(repo):
    try:
        out = subprocess.run(["git", "-C", repo, "ls-files", "-z", "--cached", "--others",
                              "--exclude-standard"], capture_output=True, timeout=30)
        tracked = subprocess.run(["git", "-C", repo, "ls-files", "-z"], capture_output=True,
                                 timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return None, None
    if tracked.returncode != 0:
        return None, None
    return ([p for p in out.stdout.decode().split("\0") if p],
            set(p for p in tracked.stdout.decode().split("\0") if p))


def context_files(repo, src, rules, candidates):
    """Files of the build context under src (a path relative to the context)."""
    src = os.path.normpath(src).replace(os.sep, "/")
    if src == ".":
        sel = candidates
    else:
        sel = [p for p in candidates if p == src or p.startswith(src + "/")]
    return [p for p in sel if not excluded(p, rules) and os.path.isfile(os.path.join(repo, p))]


def make_invocations(run_text):
    """[(vars, targets)] for each 'make ...' in a RUN line."""
    out = []
    for cmd in re.split(r"&&|;|\|\|", run_text):
        toks = cmd.split()
        if not toks or toks[0] not in ("make", "gmake"):
            continue
        vars_, targets = {}, []
        for t in toks[1:]:
            if t.startswith("-"):
                continue
            if "=" in t:
                k, _, v = t.partition("=")
                vars_[k] = v
            else:
                targets.append(t)
        out.append((vars_, targets))
    return out


def run_texts(stage, repo):
    """Each RUN of the stage as the shell sees it: a script that the stage COPYs from the
    context and the RUN names is read in (continuation lines joined)."""
    scripts = {}
    for ins in stage.all("COPY"):
        toks = ins.exec_form() or shlex.split(ins.args)
        if "from" not in ins.flags and len(toks) == 2 and os.path.isfile(os.path.join(repo, toks[0])):
            with open(os.path.join(repo, toks[0])) as f:
                scripts[toks[1]] = re.sub(r"\\\n", " ", f.read())
    out = []
    for r in stage.all("RUN"):
        text = r.args
        for dest, body in scripts.items():
            if dest in r.args.split() or any(t.endswith(dest) for t in r.args.split()):
                text += "\n" + body
        out.append((r, text))
    return out


def deps_set(repo, sets):
    """The entries of deps/debian.txt in those sets, as deps/ensure.sh --list prints them."""
    r = subprocess.run(["sh", os.path.join(repo, "deps", "ensure.sh"), "--list"] + sets,
                       capture_output=True, text=True, timeout=20)
    return r.stdout.split()


def deps_list(repo, stage, run_text):
    """run_text with each $(sh DEST/ensure.sh --list SETS) replaced by what the repository's
    deps/ensure.sh lists, where the stage COPYs deps/ to DEST; None when one is not copied."""
    dests = [os.path.normpath(shlex.split(i.args)[-1]) for i in stage.all("COPY")
             if "from" not in i.flags and [os.path.normpath(t) for t in shlex.split(i.args)[:-1]] == ["deps"]]
    bad = []

    def sub(m):
        if os.path.dirname(os.path.normpath(m.group(1))) not in dests:
            bad.append(m.group(1))
            return ""
        return " ".join(deps_set(repo, m.group(2).split()))
    out = re.sub(r"\$\(sh (\S+/ensure\.sh) --list ([^)]*)\)", sub, run_text)
    return None if bad else out


def apt_packages(run_text):
    pk = []
    for cmd in re.split(r"&&|;|\n", run_text):
        toks = cmd.split()
        if len(toks) >= 2 and toks[0] == "apt-get" and "install" in toks:
            pk += [t for t in toks[toks.index("install") + 1:] if not t.startswith("-")]
    return pk


# ------------------------------------------------------------------------------- checks
def main():
    ap = argparse.ArgumentParser()
    here = os.path.dirname(os.path.abspath(__file__))
    ap.add_argument("--repo", default=os.path.normpath(os.path.join(here, "..", "..")))
    ap.add_argument("--dockerfile", default=None)
    ap.add_argument("--edmd", default=None, help="a built edmd (default: $BUILD/edmd)")
    ap.add_argument("--build", action="store_true", help="also run the CPU stage's make")
    a = ap.parse_args()
    repo = a.repo
    dockerfile = a.dockerfile or os.path.join(repo, "Dockerfile")
    edmd = a.edmd or os.path.join(repo, os.environ.get("BUILD", "build"), "edmd")
    R = Result()

    # --- syntax
    try:
        with open(dockerfile, encoding="utf-8") as f:
            text = f.read()
        instrs = parse_dockerfile(text)
        global_args, stages = build_stages(instrs)
        R.ok("Dockerfile parses", True)
    except (OSError, ValueError) as e:
        R.ok("Dockerfile parses", False, str(e))
        print(f"{R.passed} passed, {R.failed} failed, {R.skipped} skipped")
        return 1
    names = [s.name for s in stages if s.name]
    R.ok("stage names are unique", len(names) == len(set(names)), str(names))
    bad_from = []
    for st in stages:
        for ins in st.all("COPY") + st.all("ADD"):
            fr = ins.flags.get("from")
            if fr is not None:
                earlier = [s.name for s in stages[:st.index]] + [str(k) for k in range(st.index)]
                if fr not in earlier:
                    bad_from.append(f"line {ins.line}: --from={fr}")
    R.ok("every --from names an earlier stage", not bad_from, "; ".join(bad_from))
    undeclared = []
    for st in stages:
        for v in re.findall(r"\$\{?([A-Za-z_][A-Za-z0-9_]*)", st.image):
            if v not in global_args:
                undeclared.append(f"line {st.line}: ${v}")
    R.ok("every ARG in FROM is declared before the first FROM", not undeclared, "; ".join(undeclared))
    bad_json = []
    for ins in instrs:
        if ins.keyword in ("ENTRYPOINT", "CMD", "SHELL") and ins.args.strip().startswith("[") \
                and ins.exec_form() is None:
            bad_json.append(f"line {ins.line}: {ins.keyword} is not a JSON array of strings")
    R.ok("exec forms are valid JSON", not bad_json, "; ".join(bad_json))
    R.ok("no ADD (COPY is explicit; ADD fetches URLs and unpacks archives)",
         not any(i.keyword == "ADD" for i in instrs))
    latest = [s.image for s in stages if ":" not in expand(s.image, global_args).split("/")[-1]
              and s.image not in names] + \
             [s.image for s in stages if expand(s.image, global_args).endswith(":latest")]
    R.ok("base images are pinned to a tag (no implicit :latest)", not latest, str(latest))
    apt_bad = []
    for ins, text in [rt for st in stages for rt in run_texts(st, repo)]:
        if "apt-get install" in text:
            if "--no-install-recommends" not in text or "-y" not in text.split() \
                    or "apt-get update" not in text or "rm -rf /var/lib/apt/lists" not in text:
                apt_bad.append(f"line {ins.line}")
    R.ok("apt-get: update, -y, --no-install-recommends and list cleanup in one RUN (or its script)",
         not apt_bad, "; ".join(apt_bad))

    by_name = {s.name: s for s in stages if s.name}
    runtime = [s for s in stages if s.first("ENTRYPOINT")]
    builders = [s for s in stages if any(make_invocations(r.args) for r in s.all("RUN"))]
    R.ok("a CPU runtime stage named 'cpu' (docker build --target cpu)", "cpu" in by_name
         and by_name["cpu"] in runtime)
    R.ok("the default (last) stage is the CUDA runtime", bool(stages) and stages[-1] in runtime
         and "cuda" in expand(stages[-1].image, global_args) and "runtime" in stages[-1].image)
    R.ok("the CPU stages come before any CUDA stage (legacy builder with --target cpu)",
         all(s.index < min([t.index for t in stages if "nvidia/cuda" in t.image] or [1 << 30])
             for s in stages if "nvidia/cuda" not in s.image))

    # --- CUDA images
    cuda_stages = [s for s in stages if s.image.startswith("nvidia/cuda:")]
    if cuda_stages:
        flav = {}
        for s in cuda_stages:
            tag = s.image.split(":", 1)[1]
            m = re.match(r"(.*)-(devel|runtime|base|cudnn[^-]*)-(.*)$", tag)
            flav[s.name] = (m.group(1), m.group(2), m.group(3)) if m else (tag, "?", "?")
        devel = [v for v in flav.values() if v[1] == "devel"]
        run_ = [v for v in flav.values() if v[1] == "runtime"]
        R.ok("CUDA: builds on a -devel image and runs on a -runtime image (cuBLAS included)",
             bool(devel) and bool(run_), str(flav))
        R.ok("CUDA: toolkit and runtime images have the same CUDA and OS versions",
             len({(v[0], v[2]) for v in flav.values()}) == 1, str(flav))
    else:
        R.ok("CUDA stages exist", False, "no nvidia/cuda image")

    # --- build context
    rules = dockerignore_rules(os.path.join(repo, ".dockerignore"))
    R.ok(".dockerignore exists and leaves out the build folders and .git",
         bool(rules) and excluded(".git/config", rules) and excluded("build/edmd", rules)
         and excluded("build-cpu/libedm.a", rules))
    candidates, tracked = git_files(repo)
    if candidates is None:
        candidates = []
        for root, dirs, files in os.walk(repo):
            dirs[:] = [d for d in dirs if d != ".git"]
            for fn in files:
                candidates.append(os.path.relpath(os.path.join(root, fn), repo).replace(os.sep, "/"))
    missing, untracked = [], []
    copies = {}  # stage name -> [(dest, [files])]
    for st in stages:
        for ins in st.all("COPY"):
            if "from" in ins.flags:
                continue
            form = ins.exec_form()
            toks = form if form is not None else shlex.split(ins.args)
            srcs, dest = toks[:-1], toks[-1]
            for s in srcs:
                files = context_files(repo, s, rules, candidates)
                if not files:
                    missing.append(f"line {ins.line}: {s}")
                elif tracked is not None:
                    nt = [p for p in files if p not in tracked]
                    if nt:
                        untracked.append(f"line {ins.line}: {s}: {len(nt)} untracked, e.g. {nt[0]}")
                copies.setdefault(st.name, []).append((s, dest, files))
    R.ok("every COPY source exists in the context and survives .dockerignore",
         not missing, "; ".join(missing))
    if tracked is None:
        R.skip("COPY sources are committed", "not a git checkout")
    elif untracked:
        # a fresh clone (CI) never has untracked files; in a work tree this is a reminder
        R.skip("COPY sources are committed", "; ".join(untracked))
    else:
        R.ok("COPY sources are committed (a fresh clone has them)", True)

    # --- build stages and Makefile
    make_targets = {}
    for st in builders:
        invs = [iv for r in st.all("RUN") for iv in make_invocations(r.args)]
        make_targets[st.name] = invs
    tsets = {n: sorted(t for _, ts in v for t in ts) for n, v in make_targets.items()}
    R.ok("two build stages (CPU and CUDA) run make", len(builders) == 2, str(list(tsets)))
    R.ok("both build stages make the same targets", len({tuple(v) for v in tsets.values()}) == 1,
         str(tsets))
    # the packages come from the one list that make and .ci/run read too
    want = deps_set(repo, ["build"])
    for st in builders:
        pk = []
        for _, text in run_texts(st, repo):
            text = deps_list(repo, st, text)
            pk += apt_packages(text) if text is not None else ["(deps/ not copied)"]
        R.ok(f"stage {st.name}: installs the build set of deps/debian.txt (deps/ensure.sh --list build)",
             bool(want) and sorted(pk) == sorted(want), f"installs {pk}, the list has {want}")
    for st in builders:
        cuda = "nvidia/cuda" in st.image
        for vars_, targets in make_targets[st.name]:
            want = "1" if cuda else "0"
            R.ok(f"stage {st.name}: make CUDA={want}", vars_.get("CUDA") == want,
                 f"CUDA={vars_.get('CUDA')}")
            # dry-run make in a copy of exactly the files the stage copies
            with tempfile.TemporaryDirectory() as tmp:
                for src, dest, files in copies.get(st.name, []):
                    srcn = os.path.normpath(src)
                    d = dest if dest.startswith("/") else os.path.join(st.workdir, dest)
                    is_dir = os.path.isdir(os.path.join(repo, srcn))
                    for p in files:
                        if is_dir:  # a folder's contents go into dest
                            target = os.path.join(d, os.path.relpath(p, srcn))
                        elif dest.endswith("/"):
                            target = os.path.join(d, os.path.basename(p))
                        else:
                            target = d
                        target = os.path.join(tmp, target.lstrip("/"))
                        os.makedirs(os.path.dirname(target), exist_ok=True)
                        shutil.copy2(os.path.join(repo, p), target)
                wd = os.path.join(tmp, st.workdir.lstrip("/"))
                mvars = [f"{k}={v}" for k, v in vars_.items()]
                if cuda:
                    # a dry run runs no nvcc, but the Makefile wants cuBLAS under CUDA_HOME: where
                    # this machine has no toolkit there, a stand-in (empty libcublas.so) takes its place
                    home = vars_.get("CUDA_HOME", "/usr/local/cuda")
                    if not any(os.path.exists(os.path.join(home, d, "libcublas.so"))
                               for d in ("lib64", "targets/x86_64-linux/lib", "lib")):
                        home = os.path.join(tmp, "cuda-stand-in")
                        os.makedirs(os.path.join(home, "lib64"))
                        open(os.path.join(home, "lib64", "libcublas.so"), "w").close()
                        mvars.append(f"CUDA_HOME={home}")
                    mvars.append(f"NVCC={home}/bin/nvcc")
                cmd = ["make", "-n", "-B"] + mvars + targets
                try:
                    r = subprocess.run(cmd, cwd=wd, capture_output=True, text=True, timeout=60)
                    okr = r.returncode == 0
                    detail = (r.stderr or r.stdout).strip().splitlines()[-1:] if not okr else ""
                except (OSError, subprocess.TimeoutExpired) as e:
                    okr, detail = False, str(e)
                R.ok(f"stage {st.name}: make -n {' '.join(targets)} works on the copied context",
                     okr, str(detail))
                if okr:
                    srcs_needed = set(re.findall(r"-c (\S+\.(?:c|cu))", r.stdout))
                    R.ok(f"stage {st.name}: the dry run compiles edmd's server sources",
                         any(s.startswith("server/") for s in srcs_needed), f"{len(srcs_needed)} sources")
                if okr and a.build and not cuda:
                    r2 = subprocess.run(["make", "-j2"] + [f"{k}={v}" for k, v in vars_.items()] + targets,
                                        cwd=wd, capture_output=True, text=True, timeout=900)
                    R.ok(f"stage {st.name}: make really builds in the copied context",
                         r2.returncode == 0, (r2.stderr or "").strip()[-400:])
            # the files the runtime stages take from this stage are what make produces
            build_dir = vars_.get("BUILD", "build")
            produced = {os.path.normpath(os.path.join(st.workdir, t)) for t in targets}
            for rt in runtime:
                for ins in rt.all("COPY"):
                    if ins.flags.get("from") == st.name:
                        toks = ins.exec_form() or shlex.split(ins.args)
                        for s in toks[:-1]:
                            R.ok(f"stage {rt.name}: {s} from {st.name} is a make target there",
                                 os.path.normpath(s) in produced,
                                 f"{st.name} makes {sorted(produced)} (BUILD={build_dir})")

    # --- runtime stages
    opts = edmd_options.table_options(repo)
    R.ok("server/config.c option table parsed", len(opts) > 10, f"{len(opts)} options")
    hf = edmd_options.help_flags(edmd)
    if hf is None:
        R.skip("edmd --help lists the same options as server/config.c", f"{edmd} not built")
    else:
        R.ok("edmd --help lists the same options as server/config.c",
             set(opts) | edmd_options.SPECIAL_FLAGS == hf | edmd_options.SPECIAL_FLAGS
             and set(opts) <= hf, f"only in table: {set(opts) - hf}; only in help: "
             f"{hf - set(opts) - edmd_options.SPECIAL_FLAGS}")
        opts = {k: v for k, v in opts.items() if k in hf} if hf else opts

    model_paths = set()
    for rt in runtime:
        n = rt.name
        user = rt.last("USER")
        u = user.rest.strip().split(":")[0] if user else "root"
        R.ok(f"{n}: runs as a non-root numeric user", u.isdigit() and int(u) != 0,
             f"USER {user.rest if user else '(none)'}")
        ep = rt.last("ENTRYPOINT")
        form = ep.exec_form() if ep else None
        R.ok(f"{n}: ENTRYPOINT is the exec form (SIGTERM reaches edmd)", form is not None,
             ep.rest if ep else "none")
        binaries = set()
        for ins in rt.all("COPY"):
            if "from" in ins.flags:
                toks = ins.exec_form() or shlex.split(ins.args)
                dest = toks[-1]
                for s in toks[:-1]:
                    binaries.add(os.path.join(dest, os.path.basename(s)) if dest.endswith("/") else dest)
        if form:
            R.ok(f"{n}: the entrypoint is the copied edmd", form[0] in binaries
                 and os.path.basename(form[0]) == "edmd", f"{form[0]} not in {sorted(binaries)}")
            errs = edmd_options.check_flags(form[1:], opts)
            cmd = rt.last("CMD")
            if cmd:
                cf = cmd.exec_form()
                if cf is None:
                    errs.append("CMD is not the exec form")
                else:
                    errs += edmd_options.check_flags(cf, opts)
            R.ok(f"{n}: the entrypoint's and CMD's flags are real edmd flags", not errs, "; ".join(errs))
        ss = rt.last("STOPSIGNAL")
        R.ok(f"{n}: stop signal is SIGTERM", ss is None or ss.rest.strip() in ("SIGTERM", "15"))
        env = rt.env
        bad_env = [k for k in env if k.startswith("EDMD_") and edmd_options.env_to_option(k, opts) is None]
        R.ok(f"{n}: every EDMD_* variable is an edmd option", not bad_env, str(bad_env))
        # the image's configuration file: EDMD_CONFIG -> the COPY that puts it there
        conf_src = None
        cpath = env.get("EDMD_CONFIG")
        for src, dest, files in copies.get(n, []):
            if cpath and (dest == cpath or (dest.endswith("/") and
                                            os.path.join(dest, os.path.basename(src)) == cpath)):
                conf_src = os.path.normpath(src)
        conf_text = None
        if cpath:
            R.ok(f"{n}: EDMD_CONFIG={cpath} is a file the stage copies", conf_src is not None
                 and os.path.isfile(os.path.join(repo, conf_src)), str(conf_src))
            if conf_src and os.path.isfile(os.path.join(repo, conf_src)):
                with open(os.path.join(repo, conf_src), encoding="utf-8") as f:
                    conf_text = f.read()
                bad = [f"line {k}: {nm}" for k, nm, _ in edmd_options.parse_conf_text(conf_text)
                       if nm is None or nm not in opts or nm == "config"]
                R.ok(f"{n}: every key of {conf_src} is an edmd option", not bad, "; ".join(bad))
        ep_args = (form or [None])[1:] + ((rt.last("CMD").exec_form() or []) if rt.last("CMD") else [])
        eff = edmd_options.effective(opts, conf_text, env, ep_args)
        try:
            real = edmd_options.print_config(edmd, os.path.join(repo, conf_src) if conf_src else None,
                                             {k: v for k, v in env.items() if k != "EDMD_CONFIG"},
                                             ep_args)
        except ValueError as e:
            R.ok(f"{n}: edmd --print-config accepts the image's configuration", False, str(e))
            real = None
        if real is None:
            R.skip(f"{n}: edmd --print-config agrees with the computed configuration", "edmd not built")
        else:
            diff = [f"{k}: {eff.get(k)!r} vs {real.get(k)!r}" for k in
                    ("host", "port", "model", "backend", "drain-timeout", "admin-port")
                    if str(eff.get(k)) != str(real.get(k)) and
                    not (isinstance(eff.get(k), list) and [real.get(k)] == eff.get(k))]
            R.ok(f"{n}: edmd --print-config agrees with the computed configuration", not diff,
                 "; ".join(diff))
        R.ok(f"{n}: listens on all addresses (host = 0.0.0.0)", eff.get("host") == "0.0.0.0",
             f"host = {eff.get('host')}")
        port = str(eff.get("port"))
        expose = [t.split("/")[0] for x in rt.all("EXPOSE") for t in x.rest.split()]
        R.ok(f"{n}: EXPOSE {port} (the port edmd listens on)", port in expose, f"EXPOSE {expose}")
        admin = str(eff.get("admin-port"))
        admin_host = eff.get("admin-host") or eff.get("host")
        R.ok(f"{n}: the admin listener is on (admin-port = {admin})", admin not in ("-1", "None", ""))
        R.ok(f"{n}: the admin listener answers inside the container (admin-host {admin_host})",
             admin_host in ("0.0.0.0", "127.0.0.1", "::"))
        R.ok(f"{n}: EXPOSE {admin} (the admin port)", admin in expose, f"EXPOSE {expose}")
        hc = rt.last("HEALTHCHECK")
        hct = hc.args if hc else ""
        R.ok(f"{n}: HEALTHCHECK requests /healthz on the admin port",
             bool(hc) and "/healthz" in hct and ("${EDMD_ADMIN_PORT:-" + admin + "}" in hct or f":{admin}/" in hct),
             hct)
        R.ok(f"{n}: the per-address connection limit is set explicitly (per-ip-connection-limit)",
             conf_text is not None and any(nm == "per-ip-connection-limit" for _, nm, _ in
                                           edmd_options.parse_conf_text(conf_text)) or
             "EDMD_PER_IP_CONNECTION_LIMIT" in env)
        if hc and "curl" in hct:
            pk = [p for _, t in run_texts(rt, repo) for p in apt_packages(t)]
            R.ok(f"{n}: curl (the healthcheck's client) is installed", "curl" in pk)
        want = "cuda" if "nvidia/cuda" in rt.image else "cpu"
        R.ok(f"{n}: backend = {want}", eff.get("backend") == want, f"backend = {eff.get('backend')}")
        R.ok(f"{n}: the drain timeout is set explicitly (the grace periods follow it)",
             conf_text is not None and any(nm == "drain-timeout" for _, nm, _ in
                                           edmd_options.parse_conf_text(conf_text)) or
             "EDMD_DRAIN_TIMEOUT" in env)
        models_ = eff.get("model") or []
        mp = models_[0].split("=", 1)[-1] if models_ else ""
        model_paths.add(mp)
        src_for = None
        for src, dest, files in copies.get(n, []):
            d = dest.rstrip("/")
            if mp.startswith(d + "/"):
                src_for = os.path.join(os.path.normpath(src), mp[len(d) + 1:])
        R.ok(f"{n}: the default model is a file the stage copies", bool(mp) and src_for is not None, mp)
        if src_for is not None:
            R.ok(f"{n}: the bundled model {src_for} exists",
                 os.path.isfile(os.path.join(repo, src_for)), "docker build needs it")

    # --- runtime libraries of the CPU image (ldd of a CPU build on this Debian)
    cpu = by_name.get("cpu")
    if cpu is not None:
        pk = [p for _, t in run_texts(cpu, repo) for p in apt_packages(t)]
        libs_pk = None
        if os.access(edmd, os.X_OK) and shutil.which("ldd") and shutil.which("dpkg"):
            # the libraries edmd names itself (DT_NEEDED); their own dependencies come with
            # the packages
            r = subprocess.run(["ldd", edmd], capture_output=True, text=True, timeout=20)
            where = dict(re.findall(r"(?m)^\s*(\S+) => (/\S+)", r.stdout))
            needed = []
            if shutil.which("objdump"):
                q = subprocess.run(["objdump", "-p", edmd], capture_output=True, text=True, timeout=20)
                needed = re.findall(r"(?m)^\s*NEEDED\s+(\S+)", q.stdout)
            paths = [where[l] for l in needed if l in where] if needed else list(where.values())
            # sanitizer runtimes come from `make asan`, not from the image's build
            paths = [p for p in paths if "/cuda" not in p and
                     not re.search(r"/lib(asan|ubsan|lsan|tsan)\.so", p)]
            libs_pk = set()
            unowned = []
            for p in paths:
                q = subprocess.run(["dpkg", "-S", os.path.realpath(p)], capture_output=True,
                                   text=True, timeout=20)
                if q.returncode != 0:
                    q = subprocess.run(["dpkg", "-S", p], capture_output=True, text=True, timeout=20)
                if q.returncode == 0:
                    libs_pk.add(q.stdout.split(":")[0].strip())
                else:
                    unowned.append(p)
        if libs_pk is None:
            R.skip("cpu: installs a package for every library edmd links", "no built edmd/ldd/dpkg")
        else:
            need = {p for p in libs_pk if p not in BASE_LIBS}
            # libopenblas0-pthread's library may be reached through libblas3/liblapack3 alternatives
            missing_pk = sorted(p for p in need if p not in pk)
            R.ok("cpu: installs a package for every library edmd links (ldd + dpkg -S)",
                 not missing_pk, f"missing {missing_pk} (edmd links {sorted(need)})")
        if shutil.which("apt-cache"):
            r = subprocess.run(["apt-cache", "show", "--no-all-versions"] + pk, capture_output=True,
                               text=True, timeout=60)
            found = set(re.findall(r"(?m)^Package: (\S+)", r.stdout))
            if not found:
                R.skip("cpu: its packages exist in Debian", "apt lists empty (run apt-get update)")
            else:
                R.ok("cpu: its packages exist in Debian", set(pk) <= found, f"unknown: {set(pk) - found}")

    # --- the engine-free linter of the Docker language server, when installed
    lint = os.path.join(here, "tools", "node_modules", "dockerfile-utils")
    if shutil.which("node") and os.path.isdir(lint):
        r = subprocess.run(["node", os.path.join(here, "tools", "dockerfile_lint.mjs"), dockerfile],
                           capture_output=True, text=True, timeout=60)
        R.ok("dockerfile-utils validate: no errors or warnings", r.returncode == 0,
             (r.stdout + r.stderr).strip())
    else:
        R.skip("dockerfile-utils validate", "tests/deploy/tools not installed (npm ci)")

    print(f"{R.passed} passed, {R.failed} failed, {R.skipped} skipped")
    return 1 if R.failed else 0


if __name__ == "__main__":
    sys.exit(main())
