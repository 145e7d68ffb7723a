// The JavaScript conveniences of Tenure's SDK: typed settings with errors that
// name the setting, typed errors, JSON in the key-value store, value helpers,
// and `connector({...})`, which turns an object of per-operation methods into
// the `connector` export (describe, dispatch and the default answers included).
//
//   import { connector, kvJson, fail } from '../../../sdk/js/tenure.js';
//   export const connector = defineConnector({ operations: ['create'], ... });
//
// componentize-js bundles this file into the plugin at build time.

import { get, set, remove, listKeys } from 'tenure:plugin/kv@0.1.0';
import { log } from 'tenure:plugin/log@0.1.0';

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** A plugin error of the given kind (`transient`, `conflict`, `not-found`, ...), to throw. */
export function fail(tag, val) {
  return { tag, val };
}

/** `invalid-input` naming the field and the reason, to throw. */
export function invalidInput(field, reason) {
  return fail('invalid-input', { field, reason });
}

/** An attribute value as one text (`undefined` when absent). */
export function textOf(value) {
  switch (value?.tag) {
    case 'text': return value.val;
    case 'number':
    case 'flag': return String(value.val);
    case 'many': return value.val[0];
    default: return undefined;
  }
}

/** An attribute's value by name, from a desired account or an account. */
export function attribute(account, name) {
  return account.attributes.find((a) => a.name === name)?.value;
}

/** The plugin's key-value store holding JSON. */
export const kvJson = {
  get(key) {
    const bytes = get(key);
    if (bytes === undefined) return undefined;
    try {
      return JSON.parse(decoder.decode(bytes));
    } catch (e) {
      throw fail('permanent', `stored ${key} is unreadable: ${e.message}`);
    }
  },
  require(key) {
    const value = kvJson.get(key);
    if (value === undefined) throw fail('not-found', `nothing stored at ${key}`);
    return value;
  },
  put(key, value) {
    set(key, encoder.encode(JSON.stringify(value)));
  },
  remove(key) {
    remove(key);
  },
  keys(prefix) {
    return listKeys(prefix);
  },
};

const parsers = {
  string: (text) => text,
  list: (text) => text.split(',').map((s) => s.trim()).filter(Boolean),
  int: (text) => {
    if (!/^-?\d+$/.test(text)) throw new Error(`${JSON.stringify(text)} is not a whole number`);
    return Number(text);
  },
  bool: (text) => {
    const t = text.toLowerCase();
    if (['true', 'yes', 'on', '1'].includes(t)) return true;
    if (['false', 'no', 'off', '0'].includes(t)) return false;
    throw new Error(`${JSON.stringify(text)} is not true or false`);
  },
};

/**
 * Reads the settings pairs by a spec: `{ name: { type, default, required, oneOf } }`
 * with `type` one of `string`, `list`, `int`, `bool`. Unknown, missing and
 * malformed settings throw `invalid-input` naming `settings.<name>`.
 */
export function readSettings(pairs, spec) {
  const out = {};
  for (const [name, rule] of Object.entries(spec)) {
    if (rule.default !== undefined) out[name] = rule.default;
  }
  for (const [name, raw] of pairs) {
    const rule = spec[name];
    if (!rule) {
      throw invalidInput(`settings.${name}`, `unknown setting; known: ${Object.keys(spec).join(', ')}`);
    }
    const text = raw.trim();
    let value;
    try {
      value = (parsers[rule.type ?? 'string'])(text);
    } catch (e) {
      throw invalidInput(`settings.${name}`, e.message);
    }
    if (rule.oneOf && !rule.oneOf.includes(value)) {
      throw invalidInput(`settings.${name}`, `${JSON.stringify(text)} is not one of ${rule.oneOf.join(', ')}`);
    }
    out[name] = value;
  }
  for (const [name, rule] of Object.entries(spec)) {
    if (rule.required && out[name] === undefined) throw invalidInput(`settings.${name}`, 'required, but not set');
  }
  return out;
}

const methodOf = {
  create: 'create',
  update: 'update',
  enable: 'enable',
  disable: 'disable',
  move: 'moveTo',
  'add-member': 'addMember',
  'remove-member': 'removeMember',
  delete: 'delete',
  'open-ticket': 'openTicket',
};

/**
 * The `connector` export from a definition:
 * `{ operations, matchingKeys, uniqueAttributes, settings: spec, configure(settings),
 *    lookup(keys), create(desired), update(anchor, changes), enable(anchor), disable(anchor),
 *    moveTo(anchor, container), addMember(anchor, group), removeMember(anchor, group),
 *    delete(anchor), openTicket(ticket) }`.
 * Only `lookup` and the declared operations' methods are needed; `matchingKeys` and
 * `uniqueAttributes` may be arrays or functions of the settings.
 */
export function defineConnector(def) {
  let settings;
  const list = (v) => (typeof v === 'function' ? v(settings) : v ?? []);
  return {
    configure(pairs) {
      settings = readSettings(pairs, def.settings ?? {});
      def.configure?.(settings);
    },
    describe() {
      const keys = list(def.matchingKeys);
      return {
        operations: def.operations,
        matchingKeys: keys,
        uniqueAttributes: def.uniqueAttributes === undefined ? keys : list(def.uniqueAttributes),
      };
    },
    lookupAccounts(keys) {
      return def.lookup(keys, settings);
    },
    apply(op) {
      const method = def[methodOf[op.tag]];
      if (!def.operations.includes(op.tag) || !method) {
        throw fail('permanent', `this connector does not support ${op.tag}`);
      }
      switch (op.tag) {
        case 'update': return method.call(def, op.val.anchor, op.val.changes, settings);
        case 'move': return method.call(def, op.val.anchor, op.val.container, settings);
        case 'add-member':
        case 'remove-member': return method.call(def, op.val.anchor, op.val.group, settings);
        default: return method.call(def, op.val, settings);
      }
    },
  };
}

export { log };
