// connector-js: a Tenure connector written in JavaScript (componentize-js), on
// the SDK's `defineConnector` (sdk/js/tenure.js): typed settings, dispatch and
// default answers come from there; this file is only what the connector does.
//
// It keeps accounts in the plugin's private key-value store, so it needs no
// server: a sandbox destination that proves the `connector-plugin` world from
// JavaScript. Keys: `account/<anchor>` (JSON), `by/<attribute>/<value>` -> anchor.

import { defineConnector, fail, kvJson, log, textOf } from '../../../sdk/js/tenure.js';

function indexKeys(account, matchAttributes) {
  const keys = [];
  for (const name of matchAttributes) {
    const attr = account.attributes.find((a) => a.name === name);
    const v = attr && textOf(attr.value);
    if (v !== undefined) keys.push(`by/${name}/${v.toLowerCase()}`);
  }
  return keys;
}

function load(anchor) {
  const account = kvJson.get(`account/${anchor}`);
  if (account === undefined) throw fail('not-found', `no account ${anchor}`);
  return account;
}

function save(account) {
  kvJson.put(`account/${account.anchor}`, account);
}

/** Loads an account, changes it, saves it. */
function change(anchor, edit, summary) {
  const a = load(anchor);
  edit(a);
  save(a);
  return { anchor: a.anchor, summary };
}

function nextSeq(key) {
  const seq = (kvJson.get(key) ?? 0) + 1;
  kvJson.put(key, seq);
  return seq;
}

export const connector = defineConnector({
  operations: ['create', 'update', 'enable', 'disable', 'move', 'add-member', 'remove-member', 'delete', 'open-ticket'],
  settings: { match_attributes: { type: 'list', default: ['employeeId', 'email'] } },
  matchingKeys: (s) => s.match_attributes,

  configure(s) {
    if (s.match_attributes.length === 0) throw fail('invalid-input', { field: 'settings.match_attributes', reason: 'names no attribute' });
    log('info', `connector-js matches on ${s.match_attributes.join(', ')}`);
  },

  lookup(keys) {
    for (const key of keys) {
      const anchor = kvJson.get(`by/${key.attribute}/${key.value.toLowerCase()}`);
      if (anchor !== undefined) return [load(anchor)];
    }
    return [];
  },

  create(d, s) {
    for (const key of indexKeys(d, s.match_attributes)) {
      if (kvJson.get(key) !== undefined) throw fail('conflict', `${key.split('/').slice(1).join(' ')} is already taken`);
    }
    const account = {
      anchor: `js-${nextSeq('seq')}`,
      attributes: d.attributes,
      container: d.container,
      groups: [],
      licenses: d.licenses,
      appAssignments: d.appAssignments,
      enabled: d.enabled,
      expiresAt: d.expiresAt,
    };
    save(account);
    for (const key of indexKeys(account, s.match_attributes)) kvJson.put(key, account.anchor);
    return { anchor: account.anchor, summary: `created ${account.anchor}` };
  },

  update(anchor, changes, s) {
    const a = load(anchor);
    for (const key of indexKeys(a, s.match_attributes)) kvJson.remove(key);
    for (const c of changes) {
      a.attributes = a.attributes.filter((x) => x.name !== c.name);
      if (c.value.tag !== 'absent') a.attributes.push(c);
    }
    save(a);
    for (const key of indexKeys(a, s.match_attributes)) kvJson.put(key, a.anchor);
    return { anchor: a.anchor, summary: `updated ${changes.map((c) => c.name).join(', ')}` };
  },

  enable: (anchor) => change(anchor, (a) => { a.enabled = true; }, 'enabled'),
  disable: (anchor) => change(anchor, (a) => { a.enabled = false; }, 'disabled'),
  moveTo: (anchor, container) => change(anchor, (a) => { a.container = container; }, `moved to ${container}`),
  addMember: (anchor, group) => change(anchor, (a) => { if (!a.groups.includes(group)) a.groups.push(group); }, `add-member ${group}`),
  removeMember: (anchor, group) => change(anchor, (a) => { a.groups = a.groups.filter((g) => g !== group); }, `remove-member ${group}`),

  delete(anchor, s) {
    const a = load(anchor);
    for (const key of indexKeys(a, s.match_attributes)) kvJson.remove(key);
    kvJson.remove(`account/${a.anchor}`);
    return { anchor: a.anchor, summary: 'deleted' };
  },

  openTicket(ticket) {
    const seq = nextSeq('ticket-seq');
    kvJson.put(`ticket/${seq}`, ticket);
    return { anchor: undefined, summary: `ticket ${seq} (${ticket.template})` };
  },
});
