// Load every schema of a schemas/ directory into one Ajv (draft 2020-12, strict mode,
// with ajv-formats), compile each, then validate the cases read from stdin.
//
//   node check.mjs SCHEMAS_DIR < cases.json
//
// cases.json is an array of {"schema": "<File>.json", "instance": <any JSON>}. The
// answer on stdout is one JSON object: "compiled" (how many schemas compiled),
// "refused" (file -> Ajv's complaint, for each that did not) and "results" (one per
// case, in order: {"valid": bool, "errors": [instancePath + message, ...]}).
// Strict mode is the point: it refuses unknown keywords, unknown formats, union
// types and "required" names no "properties" define, all of which a client author
// using Ajv would otherwise meet first.

import { readFileSync, readdirSync } from "node:fs";
import { join } from "node:path";
import Ajv2020 from "ajv/dist/2020.js";
import addFormats from "ajv-formats";

const directory = process.argv[2];
const ajv = new Ajv2020({ strict: true, allErrors: true });
addFormats(ajv);

const ids = new Map();
for (const file of readdirSync(directory).sort()) {
  if (!file.endsWith(".json") || file === "index.json") continue;
  const schema = JSON.parse(readFileSync(join(directory, file), "utf8"));
  ajv.addSchema(schema);
  ids.set(file, schema.$id);
}

const refused = {};
let compiled = 0;
for (const [file, id] of ids) {
  try {
    ajv.getSchema(id);
    compiled += 1;
  } catch (error) {
    refused[file] = String(error.message);
  }
}

const cases = JSON.parse(readFileSync(0, "utf8") || "[]");
const results = cases.map(({ schema, instance }) => {
  const validate = ids.has(schema) && !(schema in refused) ? ajv.getSchema(ids.get(schema)) : null;
  if (validate === null) return { valid: false, errors: [`no compiled schema ${schema}`] };
  const valid = validate(instance);
  const errors = (validate.errors ?? []).map((e) => `${e.instancePath || "/"} ${e.message}`);
  return { valid, errors };
});

process.stdout.write(JSON.stringify({ compiled, refused, results }) + "\n");
