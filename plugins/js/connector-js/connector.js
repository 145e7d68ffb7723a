// connector-js: a Tenure connector written in JavaScript (componentize-js).
//
// It keeps accounts in the plugin's private key-value store, so it needs no
// server: a sandbox destination that proves the `connector-plugin` world from
// JavaScript. Keys: `account/<anchor>` (JSON), `by/<attribute>/<value>` -> anchor.

import { log } from 'tenure:plugin/log@0.1.0';
import { get, set, remove } from 'tenure:plugin/kv@0.1.0';

const enc = new TextEncoder();
const dec = new TextDecoder();
let matchAttributes = ['employeeId', 'email'];

function kvGet(key) {
  const v = get(key);
  return v === undefined ? undefined : dec.decode(v);
}

function kvSet(key, value) {
  set(key, enc.encode(value));
}

function fail(tag, val) {
  return { tag, val };
}

function textOf(value) {
  if (value.tag === 'text') return value.val;
  if (value.tag === 'number' || value.tag === 'flag') return String(value.val);
  if (value.tag === 'many') return value.val.join(',');
  return undefined;
}

function load(anchor) {
  const raw = kvGet(`account/${anchor}`);
  if (raw === undefined) throw fail('not-found', `no account ${anchor}`);
  return JSON.parse(raw);
}

function save(account) {
  kvSet(`account/${account.anchor}`, JSON.stringify(account));
}

function index(account, add) {
  for (const name of matchAttributes) {
    const attr = account.attributes.find((a) => a.name === name);
    const v = attr && textOf(attr.value);
    if (v === undefined) continue;
    const key = `by/${name}/${v.toLowerCase()}`;
    if (add) kvSet(key, account.anchor);
    else remove(key);
  }
}

function toWit(a) {
  return {
    anchor: a.anchor,
    attributes: a.attributes,
    container: a.container,
    groups: a.groups,
    licenses: a.licenses,
    appAssignments: a.appAssignments,
    enabled: a.enabled,
    expiresAt: a.expiresAt,
  };
}

export const connector = {
  configure(settings) {
    for (const [k, v] of settings) {
      if (k === 'match_attributes') matchAttributes = v.split(',').map((s) => s.trim()).filter(Boolean);
    }
    log('info', `connector-js matches on ${matchAttributes.join(', ')}`);
  },

  describe() {
    return {
      operations: ['create', 'update', 'enable', 'disable', 'move', 'add-member', 'remove-member', 'delete', 'open-ticket'],
      matchingKeys: matchAttributes,
      uniqueAttributes: matchAttributes,
    };
  },

  lookupAccounts(keys) {
    for (const key of keys) {
      const anchor = kvGet(`by/${key.attribute}/${key.value.toLowerCase()}`);
      if (anchor !== undefined) return [toWit(load(anchor))];
    }
    return [];
  },

  apply(op) {
    switch (op.tag) {
      case 'create': {
        const d = op.val;
        for (const name of matchAttributes) {
          const attr = d.attributes.find((a) => a.name === name);
          const v = attr && textOf(attr.value);
          if (v !== undefined && kvGet(`by/${name}/${v.toLowerCase()}`) !== undefined) {
            throw fail('conflict', `${name} ${v} is already taken`);
          }
        }
        const seq = Number(kvGet('seq') ?? '0') + 1;
        kvSet('seq', String(seq));
        const account = {
          anchor: `js-${seq}`,
          attributes: d.attributes,
          container: d.container,
          groups: [],
          licenses: d.licenses,
          appAssignments: d.appAssignments,
          enabled: d.enabled,
          expiresAt: d.expiresAt,
        };
        save(account);
        index(account, true);
        return { anchor: account.anchor, summary: `created ${account.anchor}` };
      }
      case 'update': {
        const a = load(op.val.anchor);
        index(a, false);
        for (const change of op.val.changes) {
          a.attributes = a.attributes.filter((x) => x.name !== change.name);
          if (change.value.tag !== 'absent') a.attributes.push(change);
        }
        save(a);
        index(a, true);
        return { anchor: a.anchor, summary: `updated ${op.val.changes.map((c) => c.name).join(', ')}` };
      }
      case 'enable':
      case 'disable': {
        const a = load(op.val);
        a.enabled = op.tag === 'enable';
        save(a);
        return { anchor: a.anchor, summary: `${op.tag}d` };
      }
      case 'move': {
        const a = load(op.val.anchor);
        a.container = op.val.container;
        save(a);
        return { anchor: a.anchor, summary: `moved to ${op.val.container}` };
      }
      case 'add-member':
      case 'remove-member': {
        const a = load(op.val.anchor);
        const has = a.groups.includes(op.val.group);
        if (op.tag === 'add-member' && !has) a.groups.push(op.val.group);
        if (op.tag === 'remove-member') a.groups = a.groups.filter((g) => g !== op.val.group);
        save(a);
        return { anchor: a.anchor, summary: `${op.tag} ${op.val.group}` };
      }
      case 'delete': {
        const a = load(op.val);
        index(a, false);
        remove(`account/${a.anchor}`);
        return { anchor: a.anchor, summary: 'deleted' };
      }
      case 'open-ticket': {
        const seq = Number(kvGet('ticket-seq') ?? '0') + 1;
        kvSet('ticket-seq', String(seq));
        kvSet(`ticket/${seq}`, JSON.stringify(op.val));
        return { anchor: undefined, summary: `ticket ${seq} (${op.val.template})` };
      }
      default:
        throw fail('invalid-input', { field: 'operation', reason: `unknown operation ${op.tag}` });
    }
  },
};
