// The rule set without code: per destination its scope, mappings, naming conventions, rules
// (conditions, precedence, outputs) and defaults. Every change is written into the YAML text
// (document.ts), so the YAML view and this one are always the same document.
import { useState } from 'preact/hooks';
import { ConditionEditor, FieldList } from './ConditionEditor';
import {
  append, fieldPath, moveAt, renameKey, setAt,
  type Destination, type Mapping, type Outputs, type Path, type RuleSetDoc, type Unique,
} from './document';

interface Props {
  text: string;
  doc: RuleSetDoc;
  onText: (text: string) => void;
  /** The plugin's error: the field it names and its reason. */
  error: { field: string; reason: string } | null;
}

const LISTS: [keyof Outputs, string][] = [
  ['groups', 'Groups'],
  ['distribution_lists', 'Distribution lists'],
  ['m365_groups', 'Microsoft 365 groups'],
  ['licenses', 'Licences'],
  ['apps', 'Apps'],
];

const MAPPING_KINDS = ['from', 'template', 'value', 'expr', 'entra'] as const;
type MappingKind = (typeof MAPPING_KINDS)[number];
const KIND_LABELS: Record<MappingKind, string> = {
  from: 'person attribute',
  template: 'template',
  value: 'constant',
  expr: 'expression (CEL)',
  entra: 'expression (Entra)',
};

export function VisualEditor({ text, doc, onText, error }: Props) {
  const names = Object.keys(doc.destinations ?? {});
  const [chosen, setChosen] = useState(names[0] ?? '');
  const current = names.includes(chosen) ? chosen : names[0];
  const ctx: Ctx = {
    doc,
    set: (path, value) => onText(setAt(text, path, value)),
    move: (path, by) => onText(moveAt(text, path, by)),
    rename: (path, to) => onText(renameKey(text, path, to)),
    add: (path, item) => onText(append(text, path, item)),
    errorAt: (path) => {
      if (!error) return undefined;
      const field = fieldPath(path, doc);
      return error.field === field || error.field.startsWith(`${field}.`) || error.field.startsWith(`${field}[`)
        ? `${error.field}: ${error.reason}` : undefined;
    },
  };
  return (
    <div class="visual" data-testid="visual-editor">
      <FieldList />
      <nav class="tabs" aria-label="destinations">
        {names.map((n) => (
          <button key={n} class={n === current ? 'active' : 'secondary'} aria-pressed={n === current} onClick={() => setChosen(n)}>
            {n}
          </button>
        ))}
      </nav>
      {names.length === 0 && <p class="muted">This rule set names no destination yet.</p>}
      {current && <DestinationEditor key={current} name={current} dest={doc.destinations?.[current] ?? {}} ctx={ctx} />}
    </div>
  );
}

interface Ctx {
  doc: RuleSetDoc;
  set: (path: Path, value: unknown) => void;
  move: (path: Path, by: number) => void;
  rename: (path: Path, to: string) => void;
  add: (path: Path, item: unknown) => void;
  errorAt: (path: Path) => string | undefined;
}

function DestinationEditor({ name, dest, ctx }: { name: string; dest: Destination; ctx: Ctx }) {
  const base: Path = ['destinations', name];
  const rules = dest.rules ?? [];
  return (
    <div class="destination">
      <ConditionEditor label="Who gets an account here (scope)" value={dest.scope ?? ''} optional
        error={ctx.errorAt([...base, 'scope'])} onChange={(v) => ctx.set([...base, 'scope'], v)} />
      <Attributes path={[...base, 'attributes']} attributes={dest.attributes ?? {}} ctx={ctx} />
      <UniqueNames path={[...base, 'unique']} unique={dest.unique ?? {}} ctx={ctx} />
      <section class="rules-list">
        <h3>Rules <span class="muted">(lower priority first; ties in this order)</span></h3>
        {rules.map((rule, i) => {
          const path: Path = [...base, 'rules', i];
          return (
            <article class="rule card" key={`${i}-${rule.name}`} data-rule={rule.name}>
              <div class="rule-head">
                <label>Name <input value={rule.name} aria-invalid={ctx.errorAt([...path, 'name']) ? 'true' : undefined}
                  onChange={(e) => ctx.set([...path, 'name'], e.currentTarget.value.trim())} /></label>
                <label>Priority <input type="number" value={rule.priority ?? 0} class="narrow"
                  onChange={(e) => ctx.set([...path, 'priority'], Number(e.currentTarget.value) || undefined)} /></label>
                <label class="check"><input type="checkbox" checked={rule.stop ?? false}
                  onChange={(e) => ctx.set([...path, 'stop'], e.currentTarget.checked || undefined)} /> stop after this rule</label>
                <span class="spacer" />
                <button class="link" aria-label={`move ${rule.name} up`} disabled={i === 0} onClick={() => ctx.move(path, -1)}>↑</button>
                <button class="link" aria-label={`move ${rule.name} down`} disabled={i === rules.length - 1} onClick={() => ctx.move(path, 1)}>↓</button>
                <button class="link" aria-label={`delete ${rule.name}`} onClick={() => ctx.set(path, undefined)}>Delete</button>
              </div>
              <ConditionEditor label="When" value={rule.when} error={ctx.errorAt([...path, 'when'])}
                onChange={(v) => ctx.set([...path, 'when'], v ?? 'true')} />
              <OutputsEditor title="Then" path={[...path, 'then']} outputs={rule.then ?? {}} ctx={ctx} />
            </article>
          );
        })}
        <button onClick={() => ctx.add([...base, 'rules'], { name: `rule-${rules.length + 1}`, priority: 50, when: 'true' })}>
          Add a rule
        </button>
      </section>
      <OutputsEditor title="Defaults (what no matching rule set)" path={[...base, 'defaults']} outputs={dest.defaults ?? {}} ctx={ctx} />
    </div>
  );
}

function OutputsEditor({ title, path, outputs, ctx }: { title: string; path: Path; outputs: Outputs; ctx: Ctx }) {
  const err = (field: string) => ctx.errorAt([...path, field]);
  const first = ['container', 'expires', 'tickets', 'attributes', ...LISTS.map(([k]) => k)].map(err).find(Boolean);
  return (
    <fieldset class="outputs">
      <legend>{title}</legend>
      <label>Container (OU)
        <input value={outputs.container ?? ''} placeholder="OU=People,DC=acme,DC=test" aria-invalid={err('container') ? 'true' : undefined}
          onChange={(e) => ctx.set([...path, 'container'], e.currentTarget.value.trim())} />
      </label>
      {LISTS.map(([key, label]) => (
        <label key={key}>{label}
          <input value={((outputs[key] as string[] | undefined) ?? []).join(', ')} placeholder="comma-separated"
            aria-invalid={err(key) ? 'true' : undefined}
            onChange={(e) => ctx.set([...path, key], e.currentTarget.value.split(',').map((s) => s.trim()).filter(Boolean))} />
        </label>
      ))}
      <label>Account
        <select value={outputs.enabled === undefined ? '' : String(outputs.enabled)}
          onChange={(e) => ctx.set([...path, 'enabled'], e.currentTarget.value === '' ? undefined : e.currentTarget.value === 'true')}>
          <option value="">as the lifecycle says</option>
          <option value="true">enabled</option>
          <option value="false">disabled</option>
        </select>
      </label>
      <label>Expires (CEL date)
        <input class="expression" value={outputs.expires ?? ''} aria-invalid={err('expires') ? 'true' : undefined}
          placeholder='DateAdd("d", 90, person.start_date)' onChange={(e) => ctx.set([...path, 'expires'], e.currentTarget.value.trim())} />
      </label>
      <Tickets path={[...path, 'tickets']} tickets={outputs.tickets ?? []} ctx={ctx} />
      {first && <p class="error" role="alert">{first}</p>}
    </fieldset>
  );
}

function Tickets({ path, tickets, ctx }: { path: Path; tickets: { template: string; fields?: Record<string, string> }[]; ctx: Ctx }) {
  const fieldsText = (f?: Record<string, string>) => Object.entries(f ?? {}).map(([k, v]) => `${k} = ${v}`).join('; ');
  const parseFields = (t: string) => {
    const entries = t.split(';').map((p) => p.split('=')).filter((kv) => kv.length >= 2 && kv[0].trim());
    return entries.length ? Object.fromEntries(entries.map(([k, ...v]) => [k.trim(), v.join('=').trim()])) : undefined;
  };
  return (
    <div class="tickets">
      <span>Tickets</span>
      {tickets.map((t, i) => (
        <div class="ticket" key={i}>
          <input aria-label="ticket template" value={t.template} onChange={(e) => ctx.set([...path, i, 'template'], e.currentTarget.value.trim())} />
          <input aria-label="ticket fields" value={fieldsText(t.fields)} placeholder="field = ${person.manager}; ..."
            onChange={(e) => ctx.set([...path, i, 'fields'], parseFields(e.currentTarget.value))} />
          <button class="link" aria-label="remove ticket" onClick={() => ctx.set([...path, i], undefined)}>×</button>
        </div>
      ))}
      <button class="link" onClick={() => ctx.add(path, { template: 'new-template' })}>+ ticket</button>
    </div>
  );
}

function mappingKind(m: string | Mapping): MappingKind {
  if (typeof m === 'string') return 'template';
  return MAPPING_KINDS.find((k) => k !== 'template' && (m as Record<string, unknown>)[k] !== undefined) ?? 'from';
}

function Attributes({ path, attributes, ctx }: { path: Path; attributes: Record<string, string | Mapping>; ctx: Ctx }) {
  const [adding, setAdding] = useState('');
  const write = (name: string, kind: MappingKind, text: string, required: boolean, fallback: unknown) => {
    // A template is plain text: it has neither `required` nor a default.
    if (kind === 'template') return ctx.set([...path, name], text);
    const m: Record<string, unknown> = { [kind]: text };
    if (required) m.required = true;
    if (fallback !== undefined && fallback !== '') m.default = fallback;
    ctx.set([...path, name], m);
  };
  return (
    <section class="attributes">
      <h3>Mappings</h3>
      <div class="scroll">
      <table>
        <thead><tr><th>Attribute</th><th>From</th><th>Value</th><th>Required</th><th>Default</th><th /></tr></thead>
        <tbody>
          {Object.entries(attributes).map(([name, m]) => {
            const kind = mappingKind(m);
            const full = typeof m === 'string' ? {} : m;
            const text = typeof m === 'string' ? m : String((full as Record<string, unknown>)[kind] ?? '');
            const required = full.required ?? false;
            const error = ctx.errorAt([...path, name]);
            return (
              <tr key={name} class={error ? 'invalid' : ''}>
                <td><input aria-label="attribute name" value={name} onChange={(e) => ctx.rename([...path, name], e.currentTarget.value.trim())} /></td>
                <td>
                  <select aria-label={`${name} comes from`} value={kind}
                    onChange={(e) => write(name, e.currentTarget.value as MappingKind, text, required, full.default)}>
                    {MAPPING_KINDS.map((k) => <option value={k}>{KIND_LABELS[k]}</option>)}
                  </select>
                </td>
                <td>
                  <input class="expression" aria-label={`${name} value`} value={text} aria-invalid={error ? 'true' : undefined}
                    onChange={(e) => write(name, kind, e.currentTarget.value, required, full.default)} />
                  {error && <p class="error" role="alert">{error}</p>}
                </td>
                <td><input type="checkbox" aria-label={`${name} is required`} checked={required} disabled={kind === 'template'}
                  onChange={(e) => write(name, kind, text, e.currentTarget.checked, full.default)} /></td>
                <td><input aria-label={`${name} default`} disabled={kind === 'template'}
                  value={full.default === undefined ? '' : String(full.default)}
                  onChange={(e) => write(name, kind, text, required, e.currentTarget.value || undefined)} /></td>
                <td><button class="link" aria-label={`remove ${name}`} onClick={() => ctx.set([...path, name], undefined)}>×</button></td>
              </tr>
            );
          })}
        </tbody>
      </table>
      </div>
      <div class="actions">
        <input aria-label="new attribute" placeholder="attribute name" value={adding} onInput={(e) => setAdding(e.currentTarget.value)} />
        <button class="secondary" disabled={!adding.trim() || adding.trim() in attributes}
          onClick={() => { ctx.set([...path, adding.trim()], { from: 'given_name' }); setAdding(''); }}>Add a mapping</button>
      </div>
    </section>
  );
}

function UniqueNames({ path, unique, ctx }: { path: Path; unique: Record<string, Unique>; ctx: Ctx }) {
  const entries = Object.entries(unique);
  if (entries.length === 0) return null;
  return (
    <section class="unique">
      <h3>Naming conventions (unique values)</h3>
      {entries.map(([name, u]) => {
        const error = ctx.errorAt([...path, name]);
        return (
          <fieldset key={name} class={error ? 'invalid' : ''}>
            <legend>{name}</legend>
            <label>Candidates, in order (one per line; <code>{'${n}'}</code> counts up)
              <textarea class="candidates" aria-label={`${name} candidates`} value={u.candidates.join('\n')}
                onChange={(e) => ctx.set([...path, name, 'candidates'], e.currentTarget.value.split('\n').map((s) => s.trim()).filter(Boolean))} />
            </label>
            <label>Up to n = <input type="number" class="narrow" value={u.max_n ?? ''}
              onChange={(e) => ctx.set([...path, name, 'max_n'], Number(e.currentTarget.value) || undefined)} /></label>
            <label>Unique in <input value={(u.unique_in ?? []).join(', ')} placeholder="destinations"
              onChange={(e) => ctx.set([...path, name, 'unique_in'], e.currentTarget.value.split(',').map((s) => s.trim()).filter(Boolean))} /></label>
            {error && <p class="error" role="alert">{error}</p>}
          </fieldset>
        );
      })}
    </section>
  );
}
