#!/usr/bin/env python3
"""params_check.py TABLE.json - the documents that cannot read the sampler parameter table
against it.

TABLE.json is `edm params --json`: the engine's edm_sampler_param_table, one object per row
in JSON Schema words (name, type, minimum or exclusiveMinimum, maximum, inf_ok, enum,
default, ablation_only, doc). The table drives the `edm sample` options, edmd's request
parser and the PNG text at run time; these files are written by hand, so they are checked:

  server/openapi.json   GenerationRequest has one property per row (and no sampler field the
                        table lacks): type, nullable, range, enum, default, description
  server/web/index.html the form has one control per row, marked data-param: kind (select,
                        integer, number, "inf"), min / data-min-open / max, the default as
                        placeholder, value or first option, the choices; ablation-only rows
                        in the Advanced section
  tests/fuzz_server/request.dict  the fuzzer's dictionary knows every name

Standard library only. Prints FAIL lines and "N passed, N failed, N skipped".
"""
import json
import sys
from html.parser import HTMLParser

import tally
from tally import ok

table = json.load(open(sys.argv[1]))
names = [row["name"] for row in table]
ok("the table has rows", len(table) > 0)

# ---- OpenAPI ----------------------------------------------------------------------------------
# The request's own fields, which are not sampler parameters.
REQUEST_FIELDS = {"model", "n", "seed", "seeds", "class_label", "class_labels", "timeout_ms",
                  # OpenAI's Images fields, and the informational ones of a PNG's Request text
                  "prompt", "size", "response_format", "output_format", "quality", "style", "user",
                  "model_sha256", "nfe", "edm_serve_version",
                  # a start from an image (the images themselves, their hashes) and variations
                  "init_image", "mask", "init_image_sha256", "mask_sha256", "variation_seed",
                  "variation_strength"}
spec = json.load(open("server/openapi.json"))
props = spec["components"]["schemas"]["GenerationRequest"]["properties"]
extra = sorted(set(props) - REQUEST_FIELDS - set(names))
ok("openapi: no sampler field outside the table", not extra, extra)
for row in table:
    name = row["name"]
    p = props.get(name)
    ok("openapi: %s documented" % name, p is not None)
    if p is None:
        continue
    where = "openapi %s:" % name
    if row.get("inf_ok", False):  # a number or "inf": oneOf [{number schema}, {"const": "inf"}]
        alts = p.get("oneOf", [])
        ok(where + " oneOf number | \"inf\"", len(alts) == 2 and {"const": "inf"} in alts, alts)
        num = next((a for a in alts if "const" not in a), {})
    else:
        num = p
    ok(where + " type", num.get("type") == [row["type"], "null"], num.get("type"))
    for word in ("minimum", "exclusiveMinimum"):
        ok(where + " " + word, num.get(word) == row.get(word), (num.get(word), row.get(word)))
    if row["type"] == "integer":  # edmd's own max-steps may be lower than the engine's cap
        ok(where + " maximum within the engine's", num.get("maximum", row["maximum"]) <= row["maximum"])
    else:
        ok(where + " maximum", num.get("maximum") == row.get("maximum"), (num.get("maximum"), row.get("maximum")))
    if "enum" in row:
        ok(where + " enum", p.get("enum") == row["enum"] + [None], p.get("enum"))
    ok(where + " default", p.get("default") == row.get("default"), (p.get("default"), row.get("default")))
    ok(where + " description holds the doc", row["doc"].lower() in p.get("description", "").lower(),
       repr(p.get("description")))
    ok(where + " ablation-only noted", not row["ablation_only"] or "ablation" in p.get("description", "").lower())


# ---- the web form -----------------------------------------------------------------------------
class Form(HTMLParser):
    """Collects the form controls marked data-param, their options and their section."""

    def __init__(self):
        super().__init__()
        self.controls, self.select, self.option, self.details = {}, None, None, 0

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "details":
            self.details += 1
        if tag in ("input", "select") and "data-param" in a:
            c = {"tag": tag, "attrs": a, "options": [], "advanced": self.details > 0}
            self.controls[a.get("name")] = c
            if tag == "select":
                self.select = c
        if tag == "option" and self.select is not None:
            self.option = [a.get("value"), ""]

    def handle_data(self, data):
        if self.option is not None:
            self.option[1] += data

    def handle_endtag(self, tag):
        if tag == "option" and self.option is not None:
            value, text = self.option
            self.select["options"].append((text.strip() if value is None else value, text.strip()))
            self.option = None
        if tag == "select":
            self.select = None
        if tag == "details":
            self.details -= 1


def text_of(row, value):
    """The table's default as the form shows it."""
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return str(value)


form = Form()
form.feed(open("server/web/index.html").read())
ok("web: one data-param control per row", sorted(form.controls) == sorted(names),
   (sorted(form.controls), sorted(names)))
for row in table:
    c = form.controls.get(row["name"])
    if c is None:
        continue
    a, where = c["attrs"], "web %s:" % row["name"]
    ok(where + " ablation-only fields in the Advanced section", c["advanced"] or not row["ablation_only"])
    if row["type"] == "string":
        ok(where + " a select", c["tag"] == "select")
        values = [v for v, _ in c["options"]]
        ok(where + " first option is the default", values[:1] == [""] and
           "(%s)" % row["default"] in c["options"][0][1], c["options"][:1])
        ok(where + " the choices", sorted(values[1:]) == sorted(row["enum"]), values)
        continue
    ok(where + " an input", c["tag"] == "input")
    integer = row["type"] == "integer"
    ok(where + " integer iff step=1", (a.get("step") == "1") == integer, a.get("step"))
    ok(where + " number input", a.get("type") == ("text" if row.get("inf_ok", False) else "number"), a.get("type"))
    ok(where + " \"inf\" iff inf_ok", ("data-inf" in a) == row.get("inf_ok", False))
    lo = row.get("minimum", row.get("exclusiveMinimum"))
    ok(where + " min", a.get("min") is not None and float(a["min"]) == lo, a.get("min"))
    ok(where + " data-min-open iff the minimum is excluded", ("data-min-open" in a) == ("exclusiveMinimum" in row))
    if integer:  # no max: the server's max-steps decides (and answers with the field)
        ok(where + " max within the engine's", float(a.get("max", row["maximum"])) <= row["maximum"])
    else:
        ok(where + " max", (a.get("max") is None and "maximum" not in row) or
           (a.get("max") is not None and float(a["max"]) == row.get("maximum")), a.get("max"))
    if "default" in row:  # integers as the value the form sends (steps) or as placeholder
        shown = a.get("value", a.get("placeholder")) if integer else a.get("placeholder")
        ok(where + " default shown", shown == text_of(row, row["default"]), shown)
    else:
        ok(where + " no number as placeholder (the default is the sampler's)",
           not (a.get("placeholder") or "x")[0].isdigit(), a.get("placeholder"))

# ---- the fuzzer's dictionary ------------------------------------------------------------------
words = open("tests/fuzz_server/request.dict").read()
for name in names:
    ok("fuzz dictionary: %s" % name, '"\\"%s\\""' % name in words)

print("%d passed, %d failed, 0 skipped" % (tally.passed, tally.failed))
sys.exit(1 if tally.failed else 0)
