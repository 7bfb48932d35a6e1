"""edmd's real options, for the deployment checks.

Two sources, cross-checked when both exist: the option table in server/config.c (always
there, so the checks work before anything is built) and `edmd --help` of a built daemon.
An option NAME is the flag --NAME, the config-file key NAME and the variable EDMD_NAME
(upper case, '-' -> '_'); see server/config.h.
"""
import os
import re
import subprocess

SPECIAL_FLAGS = {"print-config", "version", "help"}  # answered by edmd, not table rows
VALUE_FREE = {"print-config", "version", "help"}     # flags that take no value


def table_options(repo):
    """{name: {"type": "STR|INT|DOUBLE|LIST", "default": str}} parsed from server/config.c."""
    path = os.path.join(repo, "server", "config.c")
    with open(path, encoding="utf-8") as f:
        src = f.read()
    opts = {}
    for m in re.finditer(r'\{\s*"([a-z0-9-]+)"\s*,\s*OPT_([A-Z]+)\s*,\s*F\(\w+\)\s*,\s*"([^"]*)"', src):
        opts[m.group(1)] = {"type": m.group(2), "default": m.group(3)}
    return opts


def help_flags(edmd):
    """Flag names (without --) that `edmd --help` lists, or None when edmd cannot run."""
    if not edmd or not os.access(edmd, os.X_OK):
        return None
    try:
        out = subprocess.run([edmd, "--help"], capture_output=True, text=True, timeout=20,
                             env={k: v for k, v in os.environ.items() if not k.startswith("EDMD_")})
    except (OSError, subprocess.TimeoutExpired):
        return None
    if out.returncode != 0:
        return None
    return set(re.findall(r"(?m)^\s+(?:-h, )?--([a-z0-9-]+)", out.stdout))


def env_name(opt):
    return "EDMD_" + opt.upper().replace("-", "_")


def env_to_option(var, opts):
    for name in opts:
        if env_name(name) == var:
            return name
    return None


def check_flags(args, opts):
    """Errors for the flags in an argv list: unknown names, missing values."""
    errors = []
    i = 0
    while i < len(args):
        a = args[i]
        if not a.startswith("--"):
            errors.append(f"'{a}' is not a flag (edmd takes no positional arguments)")
            i += 1
            continue
        name, eq, _ = a[2:].partition("=")
        if name in VALUE_FREE:
            i += 1
            continue
        if name not in opts:
            errors.append(f"--{name} is not an edmd option")
        elif not eq:
            if i + 1 >= len(args):
                errors.append(f"--{name} needs a value")
            i += 1
        i += 1
    return errors


def parse_conf_text(text):
    """[(lineno, name, value)] of an edmd configuration file ('name = value', '#' comments)."""
    out = []
    for k, line in enumerate(text.splitlines(), 1):
        s = line.strip()
        if not s or s.startswith("#"):
            continue
        name, eq, value = s.partition("=")
        out.append((k, name.strip() if eq else None, value.strip()))
    return out


def effective(opts, conf_text=None, env=None, args=None):
    """The configuration edmd would run with: defaults < file < EDMD_* < flags (lists from a
    higher source replace a lower one's). Values are strings; lists are lists."""
    eff = {n: ([] if o["type"] == "LIST" else o["default"]) for n, o in opts.items()}
    src = {}

    def put(name, value, level):
        if opts[name]["type"] == "LIST":
            if src.get(name) != level:
                eff[name] = []
                src[name] = level
            if level == "env":
                eff[name] = [v for v in value.split(",") if v]
            else:
                eff[name].append(value)
        else:
            eff[name] = value
            src[name] = level

    for _, name, value in parse_conf_text(conf_text or ""):
        if name in opts:
            put(name, value, "file")
    for var, value in (env or {}).items():
        name = env_to_option(var, opts)
        if name and name != "config":
            put(name, value, "env")
    args = list(args or [])
    i = 0
    while i < len(args):
        a = args[i]
        if a.startswith("--"):
            name, eq, value = a[2:].partition("=")
            if name in opts and name != "config":
                if not eq and i + 1 < len(args):
                    value = args[i + 1]
                    i += 1
                put(name, value, "flag")
        i += 1
    return eff


def print_config(edmd, conf_path=None, env=None, args=None):
    """{name: value or [values]} from `edmd --print-config`, or None when edmd cannot run."""
    if not edmd or not os.access(edmd, os.X_OK):
        return None
    e = {k: v for k, v in os.environ.items() if not k.startswith("EDMD_")}
    e.update(env or {})
    if conf_path:
        e["EDMD_CONFIG"] = conf_path
    try:
        out = subprocess.run([edmd] + list(args or []) + ["--print-config"], capture_output=True,
                             text=True, timeout=20, env=e)
    except (OSError, subprocess.TimeoutExpired):
        return None
    if out.returncode != 0:
        raise ValueError((out.stderr or out.stdout).strip())
    res = {}
    for _, name, value in parse_conf_text(out.stdout):
        if name is None:
            continue
        if name in res:
            res[name] = (res[name] if isinstance(res[name], list) else [res[name]]) + [value]
        else:
            res[name] = value
    return res
