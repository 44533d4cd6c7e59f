// validate.mjs — validates the ASL definition read from stdin (or from the
// file named as the first argument) with asl-validator: the States Language
// JSON schema, transition targets, terminal states, JSONPath syntax and
// Resource ARNs. Exit status 0 when valid, 1 when invalid, 2 on any other
// error. Run it on the substituted definition (real-looking ARNs).

import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);
let validator;
try {
  validator = require('asl-validator');
} catch (e) {
  process.stderr.write(`validate.mjs: cannot load asl-validator (run \`npm ci\` at the repository root): ${e.message}\n`);
  process.exit(2);
}

let definition;
try {
  const text = readFileSync(process.argv[2] ?? 0, 'utf8');
  definition = JSON.parse(text);
} catch (e) {
  process.stderr.write(`validate.mjs: reading the definition: ${e.message}\n`);
  process.exit(2);
}

const { isValid, errors } = validator(definition, { checkPaths: true, checkArn: true });
if (!isValid) {
  for (const e of errors) {
    process.stdout.write(`${e['Error code'] ?? ''} ${e.path ?? e.instancePath ?? ''} ${e.message ?? JSON.stringify(e)}\n`);
  }
  process.exit(1);
}
process.stdout.write('valid\n');
