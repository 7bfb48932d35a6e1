// Lints a Dockerfile with dockerfile-utils (the validator behind the Docker language server):
// instruction syntax, flags, JSON forms, ARG/ENV references, stage names. No engine needed.
//   node tests/deploy/tools/dockerfile_lint.mjs Dockerfile
// Prints each diagnostic as FILE:LINE: severity: message; exits 1 on any error or warning.
import { readFileSync } from "node:fs";
import { validate } from "dockerfile-utils";

const file = process.argv[2] ?? "Dockerfile";
const text = readFileSync(file, "utf8");
const severities = { 1: "error", 2: "warning", 3: "information", 4: "hint" };
// every check on, as errors or warnings (the defaults leave some off)
const settings = {
  deprecatedMaintainer: 1, directiveCasing: 2, emptyContinuationLine: 2, instructionCasing: 2,
  instructionCmdMultiple: 2, instructionEntrypointMultiple: 2, instructionHealthcheckMultiple: 2,
  instructionJSONInSingleQuotes: 1, instructionWorkdirRelative: 2,
};
const diags = validate(text, settings);
let bad = 0;
for (const d of diags) {
  const sev = severities[d.severity] ?? String(d.severity);
  if (d.severity <= 2) bad++;
  console.log(`${file}:${d.range.start.line + 1}: ${sev}: ${d.message}`);
}
if (!bad) console.log(`${file}: no problems (${diags.length} notes)`);
process.exit(bad ? 1 : 0);
