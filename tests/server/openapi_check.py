#!/usr/bin/env python3
"""openapi_check.py SPEC LIST - checks real edmd responses against the OpenAPI document.

LIST has one response per line: "METHOD PATH STATUS CONTENT_TYPE BODY_FILE". For each, the
path must match a documented path template and method, the status must be documented for
it, the content type must be one the response documents, and a JSON body must validate
against the documented schema. Server-Sent Events bodies are checked event by event (each
"data:" must be JSON; the final event's data must be a Job). The document itself is checked
too: every $ref resolves, and (when the jsonschema package is present) every schema is
valid JSON Schema 2020-12.

The validator below covers the JSON Schema subset the document uses (type, enum, const,
properties, required, additionalProperties (false or a schema), items, minItems, minimum,
exclusiveMinimum, maximum, pattern, oneOf, $ref), so the check needs nothing beyond the standard library.
Prints FAIL lines and "RESULT <passed> <failed>".
"""
import json
import re
import sys

import tally
from tally import ok

spec = json.load(open(sys.argv[1]))


def resolve(ref):
    assert ref.startswith("#/")
    node = spec
    for part in ref[2:].split("/"):
        node = node[part]
    return node


TYPES = {"object": dict, "array": list, "string": str, "boolean": bool, "null": type(None)}


def type_ok(v, t):
    if t == "integer":
        return isinstance(v, int) and not isinstance(v, bool)
    if t == "number":
        return isinstance(v, (int, float)) and not isinstance(v, bool)
    return isinstance(v, TYPES[t])


def validate(v, s, path="$"):
    """Returns a list of error strings."""
    errs = []
    if "$ref" in s:
        errs += validate(v, resolve(s["$ref"]), path)
    if "type" in s:
        ts = s["type"] if isinstance(s["type"], list) else [s["type"]]
        if not any(type_ok(v, t) for t in ts):
            return errs + ["%s: %r is not of type %s" % (path, v, ts)]
    if "enum" in s and v not in s["enum"]:
        errs.append("%s: %r not in %s" % (path, v, s["enum"]))
    if "const" in s and v != s["const"]:
        errs.append("%s: %r != %r" % (path, v, s["const"]))
    if isinstance(v, (int, float)) and not isinstance(v, bool):
        if "minimum" in s and v < s["minimum"]:
            errs.append("%s: %r < %r" % (path, v, s["minimum"]))
        if "exclusiveMinimum" in s and v <= s["exclusiveMinimum"]:
            errs.append("%s: %r <= %r" % (path, v, s["exclusiveMinimum"]))
        if "maximum" in s and v > s["maximum"]:
            errs.append("%s: %r > %r" % (path, v, s["maximum"]))
    if isinstance(v, str) and "pattern" in s and not re.search(s["pattern"], v):
        errs.append("%s: %r does not match %r" % (path, v, s["pattern"]))
    if isinstance(v, dict):
        props = s.get("properties", {})
        extra = s.get("additionalProperties")
        for k in s.get("required", []):
            if k not in v:
                errs.append("%s: missing %r" % (path, k))
        for k, x in v.items():
            if k in props:
                errs += validate(x, props[k], path + "." + k)
            elif extra is False:
                errs.append("%s: undocumented field %r" % (path, k))
            elif isinstance(extra, dict):
                errs += validate(x, extra, path + "." + k)
    if isinstance(v, list):
        if "minItems" in s and len(v) < s["minItems"]:
            errs.append("%s: fewer than %d items" % (path, s["minItems"]))
        if "items" in s:
            for i, x in enumerate(v):
                errs += validate(x, s["items"], "%s[%d]" % (path, i))
    if "oneOf" in s:
        n = sum(1 for sub in s["oneOf"] if not validate(v, sub, path))
        if n != 1:
            errs.append("%s: matches %d of oneOf" % (path, n))
    return errs


# ---- the document -------------------------------------------------------------------------
ok("openapi 3.1", spec.get("openapi", "").startswith("3.1"))
refs = re.findall(r'"\$ref": "([^"]+)"', json.dumps(spec))
bad = [r for r in refs if not r.startswith("#/")]
for r in refs:
    try:
        resolve(r)
    except (KeyError, AssertionError):
        bad.append(r)
ok("every $ref resolves (%d)" % len(refs), not bad, bad)
try:
    from jsonschema import Draft202012Validator
    for name, s in spec["components"]["schemas"].items():
        try:
            Draft202012Validator.check_schema(s)
            ok("schema %s is valid 2020-12" % name, True)
        except Exception as e:  # noqa: BLE001 - report any schema error
            ok("schema %s is valid 2020-12" % name, False, str(e)[:200])
except ImportError:
    print("note: jsonschema not installed; schema meta-validation skipped", file=sys.stderr)


def find_op(method, path):
    for template, item in spec["paths"].items():
        rx = "^" + re.sub(r"\\\{[^}]+\\\}", "[^/]+", re.escape(template)) + "$"
        if re.match(rx, path):
            return template, item.get(method.lower())
    return None, None


def response_spec(op, status):
    r = op["responses"].get(str(status))
    if r and "$ref" in r:
        r = resolve(r["$ref"])
    return r


seen = set()
for line in open(sys.argv[2]):
    if not line.strip():
        continue
    parts = line.split()
    method, path, status, body_file = parts[0], parts[1], parts[2], parts[-1]
    ctype = "".join(parts[3:-1])
    status = int(status)
    ctype = ctype.split(";")[0]
    desc = "%s %s -> %d %s" % (method, path, status, ctype)
    # the document's general rules (info.description): HEAD is GET without a body; every
    # path answers OPTIONS with 204 and other methods with 405 and an Error
    template, op = find_op("GET" if method == "HEAD" else method, path.split("?")[0])
    if op is None and template is not None and status in (204, 405):
        ok(desc + ": general rule", method == "OPTIONS" if status == 204 else True)
        if status == 405:
            errs = validate(json.loads(open(body_file, "rb").read()), {"$ref": "#/components/schemas/Error"})
            ok(desc + ": 405 body is an Error", not errs, errs[:3])
        continue
    ok(desc + ": documented path and method", op is not None)
    if op is None:
        continue
    r = response_spec(op, status)
    ok(desc + ": status documented", r is not None)
    if r is None:
        continue
    seen.add((template, method.upper(), status))
    content = r.get("content", {})
    if status == 204 or method == "HEAD":
        continue
    ok(desc + ": content type documented", ctype in content, list(content))
    if ctype not in content:
        continue
    schema = content[ctype].get("schema", {})
    data = open(body_file, "rb").read()
    if ctype == "application/json":
        try:
            value = json.loads(data)
        except ValueError:
            ok(desc + ": JSON body", False)
            continue
        errs = validate(value, schema)
        ok(desc + ": body matches schema", not errs, errs[:5])
    elif ctype == "image/png":
        ok(desc + ": PNG body", data[:8] == b"\x89PNG\r\n\x1a\n")
    elif ctype == "text/event-stream":
        events = re.findall(r"event: (\w+)\ndata: (.*)\n\n", data.decode())
        ok(desc + ": events", len(events) >= 2)
        for name, d in events:
            try:
                value = json.loads(d)
            except ValueError:
                ok(desc + ": event data JSON", False, d[:80])
                continue
            if name in ("completed", "failed", "cancelled"):
                errs = validate(value, {"$ref": "#/components/schemas/Job"})
                ok(desc + ": %s event is a Job" % name, not errs, errs[:5])
            elif name == "progress":
                ok(desc + ": progress event", all(k in value for k in ("step", "steps", "nfe", "nfe_total")))
print("checked %d distinct (path, method, status) combinations" % len(seen), file=sys.stderr)
print("RESULT %d %d" % (tally.passed, tally.failed))
