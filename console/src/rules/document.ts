// The rule-set document as both editors share it: the YAML text is the one source of truth.
// The visual editor reads it parsed and writes each change into the parsed document, which
// keeps every comment, key order and untouched value (the `yaml` package's document model),
// so a rule set edited here and one edited as YAML are the same document.
import { isMap, isSeq, parseDocument, type Document } from 'yaml';

export type Path = (string | number)[];

export interface Parsed {
  /** The document as plain values, or null when the text does not parse. */
  value: RuleSetDoc | null;
  /** The YAML syntax error, with its line and column. */
  error: string | null;
}

export interface Mapping {
  from?: string;
  value?: unknown;
  expr?: string;
  entra?: string;
  required?: boolean;
  default?: unknown;
}

export interface Ticket {
  template: string;
  fields?: Record<string, string>;
}

export interface Outputs {
  container?: string;
  enabled?: boolean;
  expires?: string;
  groups?: string[];
  distribution_lists?: string[];
  m365_groups?: string[];
  licenses?: string[];
  apps?: string[];
  tickets?: Ticket[];
  attributes?: Record<string, string | Mapping>;
}

export interface Rule {
  name: string;
  description?: string;
  priority?: number;
  when: string;
  stop?: boolean;
  then?: Outputs;
}

export interface Unique {
  candidates: string[];
  max_n?: number;
  unique_in?: string[];
  rename_on_change?: boolean;
}

export interface Destination {
  scope?: string;
  attributes?: Record<string, string | Mapping>;
  unique?: Record<string, Unique>;
  rules?: Rule[];
  defaults?: Outputs;
}

export interface RuleSetDoc {
  description?: string;
  destinations?: Record<string, Destination>;
  tests?: unknown[];
}

const STRINGIFY = { lineWidth: 0 } as const;

/** A line as compared across a rewrite: spacing and flow brackets' padding are the writer's. */
const normal = (line: string) =>
  line.replace(/\s+/g, ' ').replace(/([[{]) /g, '$1').replace(/ ([\]}])/g, '$1').trimEnd();

/** How far a line opens flow brackets (quoted text skipped). */
function depth(line: string): number {
  let d = 0;
  for (let i = 0; i < line.length; i++) {
    const c = line[i];
    if (c === '"' || c === "'") {
      const close = line.indexOf(c, i + 1);
      if (close < 0) break;
      i = close;
    } else if (c === '#' && (i === 0 || line[i - 1] === ' ')) break;
    else if (c === '[' || c === '{') d++;
    else if (c === ']' || c === '}') d--;
  }
  return d;
}

/** The text's logical lines: a flow collection the author wrapped is one line with its parts. */
function logical(text: string): string[][] {
  const out: string[][] = [];
  let open = 0;
  for (const line of text.split('\n')) {
    if (open > 0) out[out.length - 1].push(line);
    else out.push([line]);
    open = Math.max(0, open + depth(line));
  }
  return out;
}

/**
 * The rewritten text with every line that did not change in meaning taken from the original as
 * the author wrote it (the longest common run of logical lines, compared without spacing and
 * bracket padding), so an edit shows as the lines it changed. When the merge would not read back
 * as the rewrite does, the rewrite is kept whole.
 */
function keepLayout(original: string, rewritten: string): string {
  const a = logical(original);
  const b = rewritten.split('\n');
  const na = a.map((parts) => normal(parts.join(' ')));
  const nb = b.map(normal);
  // common[i][j]: the longest common subsequence of a[i..] and b[j..].
  const common = Array.from({ length: a.length + 1 }, () => new Uint16Array(b.length + 1));
  for (let i = a.length - 1; i >= 0; i--) {
    for (let j = b.length - 1; j >= 0; j--) {
      common[i][j] = na[i] === nb[j] ? common[i + 1][j + 1] + 1 : Math.max(common[i + 1][j], common[i][j + 1]);
    }
  }
  const out: string[] = [];
  let i = 0;
  let j = 0;
  while (j < b.length) {
    if (i < a.length && na[i] === nb[j]) {
      out.push(...a[i]);
      i++;
      j++;
    } else if (i < a.length && common[i + 1][j] >= common[i][j + 1]) {
      i++;
    } else {
      out.push(b[j]);
      j++;
    }
  }
  const merged = out.join('\n');
  const read = load(merged);
  const same = read.errors.length === 0 && JSON.stringify(read.toJS()) === JSON.stringify(load(rewritten).toJS());
  return same ? merged : rewritten;
}

/** The document written back, keeping the original's layout wherever it did not change. */
function write(original: string, doc: Document): string {
  return keepLayout(original, doc.toString(STRINGIFY));
}

function load(text: string): Document {
  return parseDocument(text, { keepSourceTokens: false });
}

export function parse(text: string): Parsed {
  const doc = load(text);
  if (doc.errors.length > 0) {
    const e = doc.errors[0];
    const at = e.linePos?.[0];
    return { value: null, error: at ? `line ${at.line}, column ${at.col}: ${e.message.split('\n')[0]}` : e.message };
  }
  const value = doc.toJS() ?? {};
  if (typeof value !== 'object' || Array.isArray(value)) return { value: null, error: 'the document must be a map' };
  return { value: value as RuleSetDoc, error: null };
}

/** Lists of names are written compactly (`[a, b]`), maps as blocks. */
function node(doc: Document, value: unknown) {
  const flow = Array.isArray(value) && value.every((v) => typeof v !== 'object' || v === null);
  return doc.createNode(value, { flow });
}

/** The text with the value at `path` set (`undefined`: removed); the rest kept as it was. */
export function setAt(text: string, path: Path, value: unknown): string {
  const doc = load(text);
  if (value === undefined || value === '' || (Array.isArray(value) && value.length === 0)) {
    if (doc.hasIn(path)) doc.deleteIn(path);
    // A map left empty by the removal goes too (`defaults: {}` says nothing).
    for (let end = path.length - 1; end > 0; end--) {
      const parent = doc.getIn(path.slice(0, end), true);
      if (!isMap(parent) || parent.items.length > 0) break;
      doc.deleteIn(path.slice(0, end));
    }
  } else {
    doc.setIn(path, node(doc, value));
  }
  return write(text, doc);
}

/** The text with the sequence item at `path` moved by `by` places (an item out of range stays). */
export function moveAt(text: string, path: Path, by: number): string {
  const doc = load(text);
  const seq = doc.getIn(path.slice(0, -1), true);
  const index = path[path.length - 1] as number;
  if (!isSeq(seq) || index + by < 0 || index + by >= seq.items.length) return text;
  const [item] = seq.items.splice(index, 1);
  seq.items.splice(index + by, 0, item);
  return write(text, doc);
}

/** The text with a map key renamed in place (its value and position kept). */
export function renameKey(text: string, path: Path, to: string): string {
  const doc = load(text);
  const map = doc.getIn(path.slice(0, -1), true);
  if (!isMap(map) || !to || map.has(to)) return text;
  const pair = map.items.find((p) => String((p.key as { value?: unknown })?.value ?? p.key) === path[path.length - 1]);
  if (!pair) return text;
  pair.key = doc.createNode(to);
  return write(text, doc);
}

/** The text with `item` added at the end of the sequence at `path` (made when absent). */
export function append(text: string, path: Path, item: unknown): string {
  const doc = load(text);
  const seq = doc.getIn(path, true);
  if (isSeq(seq)) seq.add(doc.createNode(item));
  else doc.setIn(path, doc.createNode([item]));
  return write(text, doc);
}

/** The field path the rules plugin names in its errors (`destinations.ad.rules[eng].when`). */
export function fieldPath(path: Path, doc: RuleSetDoc): string {
  let out = '';
  let at: unknown = doc;
  for (const part of path) {
    if (typeof part === 'number') {
      const item = Array.isArray(at) ? at[part] : undefined;
      const name = item && typeof item === 'object' && 'name' in item ? (item as { name: string }).name : part;
      out += `[${name}]`;
      at = item;
    } else {
      out += out ? `.${part}` : part;
      at = at && typeof at === 'object' ? (at as Record<string, unknown>)[part] : undefined;
    }
  }
  return out;
}
