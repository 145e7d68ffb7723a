import { useState } from 'preact/hooks';
import { api, ApiError, type Whoami, when } from '../api';
import { useLoad } from './useLoad';

interface Summary {
  version: number;
  author: string;
  message: string;
  created_ms: number;
  tests_passed: boolean;
  current: boolean;
}

interface Version extends Summary {
  document: string;
  tests: unknown;
}

interface TestRun {
  passed: boolean;
  summary: string;
  cases: { name: string; passed: boolean; failures: string[] }[];
}

interface Impact {
  people: number;
  truncated: boolean;
  destinations: Record<string, { counts: Record<string, number>; people_not_listed: number }>;
}

const reason = (e: unknown) => (e instanceof ApiError ? `${e.field}: ${e.reason}` : String(e));

/** Rule-set versions: read, edit as a draft with its tests, diff, impact on everyone, publish. */
export function Rules(_: { me: Whoami }) {
  const list = useLoad(() => api<{ current: { version: number } | null; versions: Summary[] }>('GET', '/api/v1/rule-sets'));
  const [open, setOpen] = useState<Version | null>(null);
  const [text, setText] = useState('');
  const [message, setMessage] = useState('');
  const [note, setNote] = useState('');
  const [tests, setTests] = useState<TestRun | null>(null);
  const [diff, setDiff] = useState('');
  const [impact, setImpact] = useState<Impact | null>(null);
  const show = async (version: number) => {
    try {
      const v = await api<Version>('GET', `/api/v1/rule-sets/${version}`);
      setOpen(v);
      setText(v.document);
      setTests(null);
      setImpact(null);
      const d = await api<{ diff: string }>('GET', `/api/v1/rule-sets/${version}/diff`).catch(() => ({ diff: '' }));
      setDiff(d.diff);
      setMessage('');
    } catch (e) {
      setMessage(reason(e));
    }
  };
  const run = (what: () => Promise<void>) => () => what().catch((e) => setMessage(reason(e)));
  const test = run(async () => setTests(await api<TestRun>('POST', '/api/v1/rule-sets/test', { document: text })));
  const save = run(async () => {
    const draft = await api<{ version: number }>('POST', '/api/v1/rule-sets', { document: text, message: note });
    setMessage(`Saved as version ${draft.version}`);
    list.reload();
    await show(draft.version);
  });
  const preview = run(async () => {
    if (open) setImpact(await api<Impact>('GET', `/api/v1/rule-sets/${open.version}/impact?detail=50`));
  });
  const publish = run(async () => {
    if (!open) return;
    await api('POST', `/api/v1/rule-sets/${open.version}/publish`);
    setMessage(`Version ${open.version} is published`);
    list.reload();
  });
  const versions = list.data?.versions ?? [];
  return (
    <div class="rules">
      <section class="card">
        <h2>Rule-set versions</h2>
        {list.error && <p class="error">{list.error}</p>}
        <table data-testid="versions">
          <thead>
            <tr><th>Version</th><th>Author</th><th>Change</th><th>Tests</th><th>Saved</th></tr>
          </thead>
          <tbody>
            {versions.map((v) => (
              <tr key={v.version} class={open?.version === v.version ? 'selected' : ''} onClick={() => show(v.version)}>
                <td>{v.version}{v.current ? ' (published)' : ''}</td>
                <td>{v.author}</td>
                <td>{v.message}</td>
                <td>{v.tests_passed ? 'pass' : 'FAIL'}</td>
                <td>{when(v.created_ms)}</td>
              </tr>
            ))}
          </tbody>
        </table>
      </section>
      {open && (
        <section class="card">
          <h2>Version {open.version}</h2>
          <textarea aria-label="document" spellcheck={false} value={text} onInput={(e) => setText(e.currentTarget.value)} />
          <div class="actions">
            <button onClick={test}>Run the tests</button>
            <input placeholder="Change note" value={note} onInput={(e) => setNote(e.currentTarget.value)} />
            <button onClick={save} disabled={!note}>Save as a draft</button>
            <button class="secondary" onClick={preview}>Impact on everyone</button>
            <button onClick={publish} disabled={open.current}>Publish</button>
          </div>
          {message && <p role="status">{message}</p>}
          {tests && (
            <div data-testid="tests">
              <h3>Tests: {tests.summary}</h3>
              <ul>{tests.cases.map((c) => <li key={c.name} class={c.passed ? '' : 'error'}>{c.name}: {c.passed ? 'pass' : c.failures.join('; ')}</li>)}</ul>
            </div>
          )}
          {impact && (
            <div data-testid="impact">
              <h3>Impact: {impact.people} people evaluated{impact.truncated ? ' (stopped early)' : ''}</h3>
              {Object.entries(impact.destinations).map(([name, d]) => (
                <p key={name}>
                  <strong>{name}</strong>: {Object.entries(d.counts).map(([k, n]) => `${k} ${n}`).join(', ')}
                </p>
              ))}
            </div>
          )}
          {diff && (
            <>
              <h3>Against the published version</h3>
              <pre class="diff">{diff}</pre>
            </>
          )}
        </section>
      )}
    </div>
  );
}
