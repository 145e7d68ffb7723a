// The document being edited, run on one person before it is saved: a live person (their newest
// stored record) or a sample person from the document's own tests. Shows every rule tested,
// whether it matched and why, what it contributed, and what each destination would do.
import { useMemo, useState } from 'preact/hooks';
import { api, describe } from '../api';
import { parseDocument } from 'yaml';

interface TraceEntry {
  destination: string;
  rule: string;
  matched: boolean;
  reason: string;
  inputs: [string, unknown][];
  contributed: string[];
}

interface DestinationPreview {
  destination: string;
  desired: { container?: string | null; groups?: string[]; enabled?: boolean } | null;
  matched: string;
  operations: { key: string; kind: string; target?: string | null }[];
  note: string | null;
}

interface Preview {
  person_key: string;
  state: string;
  trace: TraceEntry[];
  destinations: DestinationPreview[];
}

interface Sample {
  name: string;
  person: { ids?: { source: string; id: string }[] };
}

function samples(document: string): Sample[] {
  try {
    const tests = parseDocument(document).toJS()?.tests;
    return Array.isArray(tests) ? tests.filter((t) => t && typeof t.person === 'object') : [];
  } catch {
    return [];
  }
}

const shown = (v: unknown) => (typeof v === 'object' && v !== null ? JSON.stringify(Object.values(v)[0] ?? v) : String(v));

export function RulePreview({ document }: { document: string }) {
  const [source, setSource] = useState('hr');
  const [record, setRecord] = useState('');
  const [sample, setSample] = useState('');
  const [result, setResult] = useState<Preview | null>(null);
  const [error, setError] = useState('');
  const choices = useMemo(() => samples(document), [document]);
  const run = async () => {
    setError('');
    const picked = choices.find((s) => s.name === sample);
    const body = picked
      ? { person: picked.person, source: picked.person.ids?.[0]?.source ?? 'sample', kind: 'joiner', document }
      : { source, source_record_id: record.trim(), document };
    try {
      setResult(await api<Preview>('POST', '/api/v1/preview', body));
    } catch (e) {
      setResult(null);
      setError(describe(e));
    }
  };
  return (
    <div class="rule-preview" data-testid="rule-preview">
      <h3>Preview on a person</h3>
      <div class="actions">
        <select aria-label="sample person" value={sample} onChange={(e) => setSample(e.currentTarget.value)}>
          <option value="">a live person…</option>
          {choices.map((s) => <option value={s.name}>sample: {s.name}</option>)}
        </select>
        {!sample && (
          <>
            <input aria-label="source" class="narrow" value={source} onInput={(e) => setSource(e.currentTarget.value)} />
            <input aria-label="record id" placeholder="Record id" value={record} onInput={(e) => setRecord(e.currentTarget.value)} />
          </>
        )}
        <button class="secondary" onClick={run} disabled={!sample && !record.trim()}>Preview</button>
      </div>
      {error && <p class="error" role="alert">{error}</p>}
      {result && (
        <>
          <p>{result.person_key} ({result.state})</p>
          <div class="scroll">
            <table data-testid="trace">
              <thead><tr><th>Destination</th><th>Rule</th><th>Matched</th><th>Why</th><th>Read</th><th>Adds</th></tr></thead>
              <tbody>
                {result.trace.map((t, i) => (
                  <tr key={i} class={t.matched ? 'matched' : ''}>
                    <td>{t.destination}</td>
                    <td>{t.rule}</td>
                    <td>{t.matched ? 'yes' : 'no'}</td>
                    <td>{t.reason}</td>
                    <td>{t.inputs.map(([k, v]) => `${k} = ${shown(v)}`).join(', ')}</td>
                    <td>{t.contributed.join(', ')}</td>
                  </tr>
                ))}
              </tbody>
            </table>
          </div>
          <ul data-testid="preview-destinations">
            {result.destinations.map((d) => (
              <li key={d.destination}>
                <strong>{d.destination}</strong> ({d.matched}):{' '}
                {d.operations.length ? d.operations.map((o) => o.key || o.kind).join(', ') : 'nothing to do'}
                {d.note && <span class="muted"> · {d.note}</span>}
              </li>
            ))}
          </ul>
        </>
      )}
    </div>
  );
}
