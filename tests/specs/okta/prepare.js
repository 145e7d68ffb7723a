// Prepares Okta's management API description for Prism: 13 of its examples are JSON Schema
// documents holding `$ref`s, which Prism tries to resolve and aborts on ("MissingPointerError").
// Renames `$ref` keys inside `example`/`examples` values only (references to example components
// stay), and writes the result as JSON.
// Usage: NODE_PATH=<prism>/node_modules node prepare.js management-minimal.yaml out.json
const fs = require('fs');
const yaml = require('js-yaml');
const [,, input, output] = process.argv;
const doc = yaml.load(fs.readFileSync(input, 'utf8'));
let renamed = 0;
function inExample(v) {
  if (Array.isArray(v)) { v.forEach(inExample); return; }
  if (v && typeof v === 'object') {
    for (const k of Object.keys(v)) {
      if (k === '$ref') { v['x-example-ref'] = v[k]; delete v[k]; renamed++; }
      else inExample(v[k]);
    }
  }
}
function walk(v) {
  if (Array.isArray(v)) { v.forEach(walk); return; }
  if (v && typeof v === 'object') {
    for (const k of Object.keys(v)) {
      if (k === 'example') inExample(v[k]);
      else if (k === 'examples' && v[k] && typeof v[k] === 'object') {
        for (const ex of Object.values(v[k])) { if (ex && typeof ex === 'object' && 'value' in ex) inExample(ex.value); }
      } else walk(v[k]);
    }
  }
}
walk(doc);
fs.writeFileSync(output, JSON.stringify(doc));
console.error(`renamed ${renamed} $ref keys inside examples`);
