// A CEL condition as the visual editor shows it: AND/OR/NOT groups over comparisons of a
// person's field with a value. Only the boolean structure is parsed here; any part outside
// that shape (a function call, a ternary) stays as the text it was, so nothing is lost, and
// the rules plugin remains the one judge of what a condition means.

export type Op = '==' | '!=' | '<' | '<=' | '>' | '>=' | 'in' | 'startsWith' | 'endsWith' | 'contains' | 'matches' | 'has';

export const OPS: { op: Op; label: string }[] = [
  { op: '==', label: 'is' },
  { op: '!=', label: 'is not' },
  { op: 'in', label: 'is one of' },
  { op: 'startsWith', label: 'starts with' },
  { op: 'endsWith', label: 'ends with' },
  { op: 'contains', label: 'contains' },
  { op: 'matches', label: 'matches (regex)' },
  { op: '<', label: '<' },
  { op: '<=', label: '≤' },
  { op: '>', label: '>' },
  { op: '>=', label: '≥' },
  { op: 'has', label: 'is set' },
];

/** The fields a rule reads most (any `person.<name>` or `person.custom.<name>` parses). */
export const FIELDS = [
  'department', 'team', 'title', 'location', 'country', 'employment_type', 'status', 'time_zone', 'manager',
  'given_name', 'family_name', 'preferred_name', 'email', 'start_date', 'end_date', 'id',
];

export type Cond =
  | { t: 'all' | 'any'; items: Cond[] }
  | { t: 'not'; item: Cond }
  | { t: 'cmp'; field: string; op: Op; value: string }
  | { t: 'raw'; text: string };

interface Token {
  start: number;
  end: number;
  /** `&&`, `||`, `!`, `?`, or `atom` for everything else outside brackets. */
  kind: string;
}

/** Top-level tokens: brackets and strings are skipped over whole. */
function scan(src: string): Token[] | null {
  const tokens: Token[] = [];
  let depth = 0;
  let atomStart = -1;
  const flush = (i: number) => {
    if (atomStart >= 0 && src.slice(atomStart, i).trim()) tokens.push({ start: atomStart, end: i, kind: 'atom' });
    atomStart = -1;
  };
  for (let i = 0; i < src.length; i++) {
    const c = src[i];
    if (c === '"' || c === "'") {
      if (atomStart < 0 && depth === 0) atomStart = i;
      let j = i + 1;
      while (j < src.length && src[j] !== c) j += src[j] === '\\' ? 2 : 1;
      if (j >= src.length) return null;
      i = j;
      continue;
    }
    if ('([{'.includes(c)) {
      if (atomStart < 0 && depth === 0) atomStart = i;
      depth++;
      continue;
    }
    if (')]}'.includes(c)) {
      depth--;
      if (depth < 0) return null;
      continue;
    }
    if (depth > 0) continue;
    const two = src.slice(i, i + 2);
    if (two === '&&' || two === '||') {
      flush(i);
      tokens.push({ start: i, end: i + 2, kind: two });
      i++;
    } else if (c === '!' && src[i + 1] !== '=' && atomStart < 0) {
      tokens.push({ start: i, end: i + 1, kind: '!' });
    } else if (c === '?') {
      flush(i);
      tokens.push({ start: i, end: i + 1, kind: '?' });
    } else if (atomStart < 0 && c.trim()) {
      atomStart = i;
    }
  }
  flush(src.length);
  return depth === 0 ? tokens : null;
}

function split(src: string, op: '&&' | '||'): string[] {
  const tokens = scan(src) ?? [];
  const parts: string[] = [];
  let from = 0;
  for (const t of tokens) {
    if (t.kind === op) {
      parts.push(src.slice(from, t.start));
      from = t.end;
    }
  }
  parts.push(src.slice(from));
  return parts.map((p) => p.trim());
}

/** Whether the whole text is one parenthesised group. */
function wrapped(src: string): boolean {
  if (!src.startsWith('(') || !src.endsWith(')')) return false;
  const tokens = scan(src);
  return tokens !== null && tokens.length === 1 && tokens[0].start === 0 && tokens[0].end === src.length
    && matchingParen(src) === src.length - 1;
}

function matchingParen(src: string): number {
  let depth = 0;
  for (let i = 0; i < src.length; i++) {
    const c = src[i];
    if (c === '"' || c === "'") {
      let j = i + 1;
      while (j < src.length && src[j] !== c) j += src[j] === '\\' ? 2 : 1;
      i = j;
    } else if (c === '(') depth++;
    else if (c === ')' && --depth === 0) return i;
  }
  return -1;
}

const FIELD = String.raw`person\.[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)?`;
const STRING = String.raw`"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'`;
const SCALAR = String.raw`${STRING}|-?\d+(?:\.\d+)?|true|false`;
const COMPARE = new RegExp(String.raw`^(${FIELD})\s*(==|!=|<=|>=|<|>|in)\s*(${SCALAR}|\[(?:\s*(?:${SCALAR})\s*,?)*\])$`);
const METHOD = new RegExp(String.raw`^(${FIELD})\.(startsWith|endsWith|contains|matches)\(\s*(${STRING})\s*\)$`);
const HAS = new RegExp(String.raw`^has\(\s*(${FIELD})\s*\)$`);

function literal(text: string): string {
  if (text.startsWith('"') || text.startsWith("'")) {
    const body = text.slice(1, -1);
    try {
      return text.startsWith('"') ? JSON.parse(text) : JSON.parse(`"${body.replace(/"/g, '\\"')}"`);
    } catch {
      return body;
    }
  }
  return text;
}

function leaf(src: string): Cond {
  let m = COMPARE.exec(src);
  if (m) {
    const value = m[3].startsWith('[')
      ? (m[3].slice(1, -1).match(new RegExp(SCALAR, 'g')) ?? []).map(literal).join(', ')
      : literal(m[3]);
    return { t: 'cmp', field: m[1].slice('person.'.length), op: m[2] as Op, value };
  }
  m = METHOD.exec(src);
  if (m) return { t: 'cmp', field: m[1].slice('person.'.length), op: m[2] as Op, value: literal(m[3]) };
  m = HAS.exec(src);
  if (m) return { t: 'cmp', field: m[1].slice('person.'.length), op: 'has', value: '' };
  return { t: 'raw', text: src };
}

/** The condition's structure; text it cannot place stays a `raw` part, as written. */
export function parse(src: string): Cond {
  const text = src.trim();
  const tokens = scan(text);
  if (tokens === null || tokens.some((t) => t.kind === '?')) return { t: 'raw', text };
  const any = split(text, '||');
  if (any.length > 1) return { t: 'any', items: any.map(parse) };
  const all = split(text, '&&');
  if (all.length > 1) return { t: 'all', items: all.map(parse) };
  if (text.startsWith('!') && !text.startsWith('!=')) {
    const rest = text.slice(1).trim();
    const parsed = parse(rest);
    // `!(a)` is NOT a, not NOT of a group of one.
    const inner = (parsed.t === 'all' || parsed.t === 'any') && parsed.items.length === 1 ? parsed.items[0] : parsed;
    if (wrapped(rest) || inner.t === 'cmp') return { t: 'not', item: inner };
  }
  if (wrapped(text)) {
    const inner = parse(text.slice(1, -1));
    // A group of one keeps its parentheses' meaning as a group.
    return inner.t === 'all' || inner.t === 'any' ? inner : { t: 'all', items: [inner] };
  }
  return leaf(text);
}

function value(v: string, op: Op): string {
  if (op === 'in') {
    const items = v.split(',').map((s) => s.trim()).filter(Boolean);
    return `[${items.map((s) => (/^-?\d+(\.\d+)?$/.test(s) ? s : JSON.stringify(s))).join(', ')}]`;
  }
  if (/^-?\d+(\.\d+)?$/.test(v) && ['<', '<=', '>', '>=', '==', '!='].includes(op)) return v;
  if ((v === 'true' || v === 'false') && (op === '==' || op === '!=')) return v;
  return JSON.stringify(v);
}

/** CEL text for a condition (the plugin checks it like any other). */
export function print(c: Cond, inside?: 'all' | 'any' | 'not'): string {
  switch (c.t) {
    case 'cmp': {
      const field = `person.${c.field}`;
      if (c.op === 'has') return `has(${field})`;
      if (['startsWith', 'endsWith', 'contains', 'matches'].includes(c.op)) return `${field}.${c.op}(${JSON.stringify(c.value)})`;
      return `${field} ${c.op} ${value(c.value, c.op)}`;
    }
    case 'raw': {
      const complex = /&&|\|\||\?/.test(c.text);
      return inside && complex ? `(${c.text})` : c.text || 'true';
    }
    case 'not':
      return c.item.t === 'cmp' && c.item.op === 'has' ? `!${print(c.item)}` : `!(${print(c.item)})`;
    case 'all':
    case 'any': {
      if (c.items.length === 0) return c.t === 'all' ? 'true' : 'false';
      const text = c.items.map((i) => print(i, c.t)).join(c.t === 'all' ? ' && ' : ' || ');
      const needsParens = c.items.length > 1 && (inside === 'not' || (inside === 'all' && c.t === 'any'));
      return needsParens ? `(${text})` : text;
    }
  }
}
