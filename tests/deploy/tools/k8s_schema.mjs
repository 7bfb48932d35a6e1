// Offline schema validation of Kubernetes manifests against the API's OpenAPI schemas, as
// compiled by kubernetes-models (no cluster, no network).
//   node tests/deploy/tools/k8s_schema.mjs FILE.yaml...
// Each document must be a known apiVersion/kind and validate: types, required fields,
// formats, enums. The generated validators ignore unknown fields (as the API's OpenAPI
// does), so every object is wrapped in a Proxy that records which properties the
// validator reads: a property it never looked at is a field the schema does not have
// (what `kubectl apply --validate=strict` reports as "unknown field"). Prints one line per
// document and closes with "N passed, N failed, N skipped"; exits 1 on a failure.
import { readFileSync } from "node:fs";
import yaml from "js-yaml";

const groupDir = (apiVersion) => {
  const [g, v] = apiVersion.includes("/") ? apiVersion.split("/") : ["", apiVersion];
  return g === "" ? v : `${g}/${v}`;
};
const cap = (s) => s.charAt(0).toUpperCase() + s.slice(1);

// Custom resources (KEDA's ScaledObject) come from their own @kubernetes-models package:
// API group -> the package, and the name of a kind's schema in its _schemas/.
const crds = {
  "keda.sh": { pkg: "@kubernetes-models/keda", schema: (v, kind) => `ComGithubKedacoreKedaV2ApisKeda${cap(v)}${kind}` },
};
const crdOf = (apiVersion) => crds[apiVersion.split("/")[0]];

async function validatorFor(apiVersion, kind) {
  const crd = crdOf(apiVersion);
  const mod = await import(`${crd ? crd.pkg : "kubernetes-models"}/${groupDir(apiVersion)}/${kind}`);
  const cls = mod[kind] ?? mod.default;
  if (!cls) throw new Error(`no model for ${apiVersion} ${kind}`);
  return cls;
}

// Wraps obj so that every property read by the validator is recorded per path.
function track(obj, path, seen) {
  if (obj === null || typeof obj !== "object") return obj;
  const reads = new Set();
  seen.push({ path, obj, reads });
  const cache = new Map();
  return new Proxy(obj, {
    get(target, prop, recv) {
      if (typeof prop === "string") reads.add(prop);
      const v = Reflect.get(target, prop, recv);
      if (typeof prop !== "string" || v === null || typeof v !== "object") return v;
      if (!cache.has(prop)) cache.set(prop, track(v, `${path}/${prop}`, seen));
      return cache.get(prop);
    },
    getOwnPropertyDescriptor(target, prop) {
      // for-in over a map (labels, resources...) reads each key through get afterwards
      return Reflect.getOwnPropertyDescriptor(target, prop);
    },
  });
}

let passed = 0, failed = 0;
for (const file of process.argv.slice(2)) {
  let docs;
  try {
    docs = yaml.loadAll(readFileSync(file, "utf8")).filter((d) => d !== null && d !== undefined);
  } catch (e) {
    console.log(`FAIL ${file}: YAML: ${e.message}`);
    failed++;
    continue;
  }
  for (const doc of docs) {
    const name = `${file}: ${doc.kind ?? "?"} ${doc.metadata?.name ?? "?"}`;
    let cls;
    try {
      cls = await validatorFor(doc.apiVersion, doc.kind);
    } catch (e) {
      console.log(`FAIL ${name}: unknown apiVersion/kind ${doc.apiVersion} ${doc.kind}`);
      failed++;
      continue;
    }
    const problems = [];
    // 1. the schema proper
    try {
      new cls(doc).validate();
    } catch (e) {
      for (const err of e.errors ?? [{ instancePath: "", message: e.message }])
        problems.push(`${err.instancePath || "/"} ${err.message}`);
    }
    // 2. unknown fields: run the bare validator on a tracked copy
    const seen = [];
    const data = JSON.parse(JSON.stringify(doc));
    const tracked = track(data, "", seen);
    const crd = crdOf(doc.apiVersion);
    const schemaName = (() => {
      const [g, v] = doc.apiVersion.includes("/") ? doc.apiVersion.split("/") : ["core", doc.apiVersion];
      if (crd) return crd.schema(v, doc.kind);
      const grp = g.split(".")[0];
      return `IoK8sApi${cap(grp)}${cap(v)}${doc.kind}`;
    })();
    try {
      // a CRD package does not export its _schemas/: import the file by its URL
      const { validate } = await import(crd ? new URL(`_schemas/${schemaName}.js`, import.meta.resolve(crd.pkg)).href
                                            : `kubernetes-models/_schemas/${schemaName}`);
      validate(tracked);
      for (const { path, obj, reads } of seen) {
        if (Array.isArray(obj)) continue;
        for (const k of Object.keys(obj))
          if (!reads.has(k)) problems.push(`${path}/${k}: unknown field`);
      }
    } catch (e) {
      problems.push(`strict field check unavailable (${schemaName}): ${e.message}`);
    }
    if (problems.length) {
      console.log(`FAIL ${name}`);
      for (const p of problems) console.log(`    ${p}`);
      failed++;
    } else {
      console.log(`ok   ${name}: ${doc.apiVersion} schema, no unknown fields`);
      passed++;
    }
  }
}
console.log(`${passed} passed, ${failed} failed, 0 skipped`);
process.exit(failed ? 1 : 0);
