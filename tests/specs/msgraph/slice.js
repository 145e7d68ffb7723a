// Cuts Microsoft Graph's per-module OpenAPI files down to the operations the `entra` connector
// uses, so Prism can load them (a whole module takes minutes and gigabytes). Paths are kept as
// Microsoft describes them, under `/v1.0`; bound actions lose their `microsoft.graph.` namespace
// (`/users/{user-id}/assignLicense`, as clients call them). Schemas reached more than
// SLICE_DEPTH (default 1) property hops from an operation become `{}` (any value), `allOf` bases
// stay whole, and Graph's `additionalProperties: {type: object}` becomes `true` so the
// `@odata.*` annotations a real answer carries validate. `GET /subscribedSkus` is in none of the
// vendored modules: it is described from Microsoft's reference (subscribedSku: skuId, skuPartNumber),
// and so is `POST /$batch` (JSON batching's envelope; the parts inside are not checked one by one).
// Usage: NODE_PATH=<prism>/node_modules node slice.js <dir with the .yml files> out.json
const fs = require('fs');
const path = require('path');
const yaml = require('js-yaml');
const [,, dir, output] = process.argv;
const MAX = Number(process.env.SLICE_DEPTH || 1);

const wanted = {
  'Users.yml': ['/users', '/users/{user-id}', '/users/{user-id}/manager', '/users/{user-id}/manager/$ref',
    '/users/{user-id}/memberOf',
    '/users/{user-id}/licenseDetails'],
  'Groups.yml': ['/groups', '/groups/{group-id}/members/$ref', '/groups/{group-id}/members/{directoryObject-id}/$ref'],
  'Users.Actions.yml': ['/users/{user-id}/microsoft.graph.assignLicense',
    '/users/{user-id}/microsoft.graph.revokeSignInSessions'],
};

const out = {
  openapi: '3.0.1',
  info: { title: 'Microsoft Graph v1.0: the operations of the entra connector', version: 'v1.0' },
  paths: {},
  components: { schemas: {}, responses: {}, requestBodies: {}, parameters: {}, examples: {}, securitySchemes: {} },
};
const depthOf = {}; // kind/name -> depth it was copied at

function lookup(doc, ref) {
  const [, , kind, name] = ref.split('/');
  return [kind, name, doc.components[kind][name]];
}

// Copies `node` from `doc`, pruning schema references deeper than MAX; `depth` counts hops.
function copy(doc, node, depth, inSchema) {
  if (Array.isArray(node)) return node.map((n) => copy(doc, n, depth, inSchema));
  if (!node || typeof node !== 'object') return node;
  if (typeof node.$ref === 'string' && node.$ref.startsWith('#/components/')) {
    const [kind, name, target] = lookup(doc, node.$ref);
    if (target === undefined) return {};
    if (kind === 'schemas' && depth > MAX) return {};
    const key = `${kind}/${name}`;
    if (!(key in depthOf) || depthOf[key] > depth) {
      depthOf[key] = depth;
      out.components[kind][name] = {}; // break cycles while copying
      out.components[kind][name] = copy(doc, target, depth, kind === 'schemas');
    }
    return { $ref: node.$ref };
  }
  const result = {};
  for (const [k, v] of Object.entries(node)) {
    if (k === 'example' || k === 'examples') continue;
    if (inSchema && k === 'properties') {
      result[k] = Object.fromEntries(Object.entries(v).map(([p, s]) => [p, copy(doc, s, depth + 1, true)]));
    } else if (inSchema && (k === 'items' || k === 'additionalProperties')) {
      if (k === 'additionalProperties' && v && v.type === 'object' && Object.keys(v).length === 1) result[k] = true;
      else result[k] = copy(doc, v, depth + 1, true);
    } else if (k === 'schema') {
      result[k] = copy(doc, v, depth, true);
    } else {
      result[k] = copy(doc, v, depth, inSchema);
    }
  }
  return result;
}

for (const [file, paths] of Object.entries(wanted)) {
  const doc = yaml.load(fs.readFileSync(path.join(dir, file), 'utf8'));
  Object.assign(out.components.securitySchemes, doc.components.securitySchemes || {});
  out.security = doc.security;
  for (const p of paths) {
    if (!doc.paths[p]) throw new Error(`${file} has no path ${p}`);
    const name = '/v1.0' + p.replace('/microsoft.graph.', '/');
    out.paths[name] = copy(doc, doc.paths[p], 0, false);
  }
}

out.paths['/v1.0/subscribedSkus'] = {
  get: {
    operationId: 'subscribedSku_List',
    parameters: [{ name: '$select', in: 'query', schema: { type: 'string' } }],
    responses: {
      '200': {
        description: 'The organization\'s subscriptions',
        content: { 'application/json': { schema: { type: 'object', additionalProperties: true,
          properties: { value: { type: 'array', items: { type: 'object', additionalProperties: true,
            required: ['skuId', 'skuPartNumber'],
            properties: { skuId: { type: 'string', format: 'uuid' }, skuPartNumber: { type: 'string' },
              capabilityStatus: { type: 'string' }, consumedUnits: { type: 'integer' } } } } } } } },
      },
    },
  },
};

// JSON batching is in none of the modules either: the envelope as Microsoft's reference
// ("Combine multiple requests in one HTTP call using JSON batching") describes it.
out.paths['/v1.0/$batch'] = {
  post: {
    operationId: 'batch',
    requestBody: {
      required: true,
      content: { 'application/json': { schema: { type: 'object', required: ['requests'], properties: {
        requests: { type: 'array', minItems: 1, maxItems: 20, items: { type: 'object',
          required: ['id', 'method', 'url'], properties: {
            id: { type: 'string' }, method: { type: 'string', enum: ['GET', 'POST', 'PUT', 'PATCH', 'DELETE'] },
            url: { type: 'string', pattern: '^/' }, headers: { type: 'object', additionalProperties: { type: 'string' } },
            body: {}, dependsOn: { type: 'array', items: { type: 'string' } } } } } } } } },
    },
    responses: {
      '200': {
        description: 'The answers, in any order',
        content: { 'application/json': { schema: { type: 'object', required: ['responses'], properties: {
          responses: { type: 'array', items: { type: 'object', required: ['id', 'status'], properties: {
            id: { type: 'string' }, status: { type: 'integer' },
            headers: { type: 'object', additionalProperties: { type: 'string' } }, body: {} } } } } } } },
      },
    },
  },
};

fs.writeFileSync(output, JSON.stringify(out));
const count = (k) => Object.keys(out.components[k]).length;
console.error(`graph slice: ${Object.keys(out.paths).length} paths, ${count('schemas')} schemas, depth ${MAX}`);
