// A condition edited as AND/OR/NOT groups of comparisons. The text is rewritten only when a
// person changes something here; a condition nobody touched keeps its exact text.
import { useMemo } from 'preact/hooks';
import { FIELDS, OPS, parse, print, type Cond, type Op } from './condition';

interface Props {
  label: string;
  value: string;
  onChange: (text: string | undefined) => void;
  /** An empty condition may be removed (a scope); a rule's `when` may not. */
  optional?: boolean;
  error?: string;
}

export function ConditionEditor({ label, value, onChange, optional, error }: Props) {
  // `true` (or nothing) is "always": an empty group, ready for its first comparison.
  const tree = useMemo<Cond>(() => (['', 'true'].includes(value.trim()) ? { t: 'all', items: [] } : parse(value)), [value]);
  const root: Cond = tree.t === 'all' || tree.t === 'any' ? tree : { t: 'all', items: [tree] };
  const write = (c: Cond) => onChange(print(c));
  return (
    <fieldset class={`condition${error ? ' invalid' : ''}`}>
      <legend>{label}</legend>
      <Group cond={root} onChange={write} depth={0} />
      <details>
        <summary>As an expression</summary>
        <input
          class="expression"
          aria-label={`${label} as an expression`}
          aria-invalid={error ? 'true' : undefined}
          value={value}
          onChange={(e) => onChange(e.currentTarget.value.trim() || (optional ? undefined : 'true'))}
        />
      </details>
      {error && <p class="error" role="alert">{error}</p>}
    </fieldset>
  );
}

function Group({ cond, onChange, depth }: { cond: Cond & { t: 'all' | 'any' }; onChange: (c: Cond) => void; depth: number }) {
  const set = (i: number, c: Cond | null) => {
    const items = cond.items.slice();
    if (c === null) items.splice(i, 1);
    else items[i] = c;
    onChange({ ...cond, items });
  };
  const add = (c: Cond) => onChange({ ...cond, items: [...cond.items, c] });
  return (
    <div class={`group depth-${depth % 2}`}>
      <select aria-label="match" value={cond.t} onChange={(e) => onChange({ ...cond, t: e.currentTarget.value as 'all' | 'any' })}>
        <option value="all">All of (AND)</option>
        <option value="any">Any of (OR)</option>
      </select>
      {cond.items.length === 0 && <p class="muted">{cond.t === 'all' ? 'Always (no condition yet)' : 'Never (no condition yet)'}</p>}
      <ul>
        {cond.items.map((item, i) => (
          <li key={i}>
            <Part cond={item} onChange={(c) => set(i, c)} depth={depth} />
            <button class="link" aria-label="remove this part" onClick={() => set(i, null)}>×</button>
          </li>
        ))}
      </ul>
      <div class="adders">
        <button class="link" onClick={() => add({ t: 'cmp', field: 'department', op: '==', value: '' })}>+ comparison</button>
        <button class="link" onClick={() => add({ t: cond.t === 'all' ? 'any' : 'all', items: [] })}>+ group</button>
        <button class="link" onClick={() => add({ t: 'not', item: { t: 'cmp', field: 'status', op: '==', value: '' } })}>+ NOT</button>
        <button class="link" onClick={() => add({ t: 'raw', text: '' })}>+ expression</button>
      </div>
    </div>
  );
}

function Part({ cond, onChange, depth }: { cond: Cond; onChange: (c: Cond) => void; depth: number }) {
  switch (cond.t) {
    case 'all':
    case 'any':
      return <Group cond={cond} onChange={onChange} depth={depth + 1} />;
    case 'not':
      return (
        <div class="not">
          <strong>NOT</strong>
          <Part cond={cond.item} onChange={(item) => onChange({ t: 'not', item })} depth={depth + 1} />
        </div>
      );
    case 'raw':
      return (
        <input class="expression" aria-label="expression" value={cond.text} placeholder='e.g. size(person.emails) > 1'
          onChange={(e) => onChange({ t: 'raw', text: e.currentTarget.value })} />
      );
    case 'cmp':
      return (
        <span class="comparison">
          <input list="person-fields" aria-label="field" value={cond.field}
            onChange={(e) => onChange({ ...cond, field: e.currentTarget.value.trim() })} />
          <select aria-label="operator" value={cond.op} onChange={(e) => onChange({ ...cond, op: e.currentTarget.value as Op })}>
            {OPS.map((o) => <option value={o.op}>{o.label}</option>)}
          </select>
          {cond.op !== 'has' && (
            <input aria-label="value" value={cond.value} placeholder={cond.op === 'in' ? 'a, b, c' : 'value'}
              onChange={(e) => onChange({ ...cond, value: e.currentTarget.value })} />
          )}
        </span>
      );
  }
}

/** The field suggestions every comparison offers (rendered once per editor). */
export function FieldList() {
  return (
    <datalist id="person-fields">
      {FIELDS.map((f) => <option value={f} />)}
      <option value="custom.level" />
    </datalist>
  );
}
