import { useEffect, useMemo, useState } from 'preact/hooks';
import { api, ApiError, type Whoami, when } from '../api';
import { useLoad } from './useLoad';
import { VisualEditor } from '../rules/VisualEditor';
import { ExpressionHelp } from '../rules/ExpressionHelp';
import { parse } from '../rules/document';
import { RulePreview } from '../rules/RulePreview';

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

/** The plugin's refusal as a field and a reason (`destinations.ad.rules[eng].when: line 1, ...`). */
export interface FieldError {
  field: string;
  reason: string;
}

// A field path may hold a rule's name in brackets, spaces and all.
const FIELD = /((?:destinations\.|tests\[[^\]]*\])(?:[^\s:[\]]|\[[^\]]*\])*):\s*([\s\S]*)$/;

function fieldError(e: unknown): FieldError {
  if (!(e instanceof ApiError)) return { field: 'request', reason: String(e) };
  const m = FIELD.exec(e.reason);
  return m ? { field: m[1], reason: m[2] } : { field: e.field, reason: e.reason };
}

const reason = (e: unknown) => {
  const f = fieldError(e);
  return `${f.field}: ${f.reason}`;
};

/** What the plugin says of the text being edited, asked again shortly after each change. */
function useValidation(text: string, enabled: boolean) {
  const [state, setState] = useState<{ tests: TestRun | null; error: FieldError | null; checking: boolean }>({
    tests: null,
    error: null,
    checking: false,
  });
  useEffect(() => {
    if (!enabled || !text.trim()) return;
    let stale = false;
    setState((s) => ({ ...s, checking: true }));
    const timer = setTimeout(() => {
      api<TestRun>('POST', '/api/v1/rule-sets/test', { document: text })
        .then((tests) => !stale && setState({ tests, error: null, checking: false }))
        .catch((e) => !stale && setState({ tests: null, error: fieldError(e), checking: false }));
    }, 400);
    return () => {
      stale = true;
      clearTimeout(timer);
    };
  }, [text, enabled]);
  return state;
}

/** Rule-set versions: edited visually or as YAML (one document), checked as you type, previewed
 *  on a person with the rules' trace and on everyone, diffed, published under four eyes, rolled back. */
export function Rules({ me }: { me: Whoami }) {
  const list = useLoad(() => api<{ current: { version: number } | null; versions: Summary[] }>('GET', '/api/v1/rule-sets'));
  const [open, setOpen] = useState<Version | null>(null);
  const [text, setText] = useState('');
  const [view, setView] = useState<'visual' | 'yaml'>('visual');
  const [message, setMessage] = useState('');
  const [note, setNote] = useState('');
  const [diff, setDiff] = useState('');
  const [impact, setImpact] = useState<Impact | null>(null);
  const parsed = useMemo(() => parse(text), [text]);
  const validation = useValidation(text, open !== null && parsed.error === null);
  const edited = open !== null && text !== open.document;
  const show = async (version: number) => {
    try {
      const v = await api<Version>('GET', `/api/v1/rule-sets/${version}`);
      setOpen(v);
      setText(v.document);
      setImpact(null);
      const d = await api<{ diff: string }>('GET', `/api/v1/rule-sets/${version}/diff`).catch(() => ({ diff: '' }));
      setDiff(d.diff);
      setMessage('');
    } catch (e) {
      setMessage(reason(e));
    }
  };
  const run = (what: () => Promise<void>) => () => what().catch((e) => setMessage(reason(e)));
  const save = run(async () => {
    const draft = await api<{ version: { version: number } }>('POST', '/api/v1/rule-sets', { document: text, message: note });
    const saved = draft.version.version;
    setNote('');
    list.reload();
    await show(saved);
    setMessage(`Saved as version ${saved}`);
  });
  const preview = run(async () => {
    if (open) setImpact(await api<Impact>('GET', `/api/v1/rule-sets/${open.version}/impact?detail=50`));
  });
  const publish = run(async () => {
    if (!open) return;
    await api('POST', `/api/v1/rule-sets/${open.version}/publish`);
    list.reload();
    setMessage(`Version ${open.version} is published`);
  });
  const versions = list.data?.versions ?? [];
  const published = list.data?.current?.version ?? null;
  // As the API allows (four eyes is the API's to enforce: never one's own draft).
  const canPublish = me.roles.some((r) => r === 'owner' || r === 'it-admin' || r === 'hr-admin');
  return (
    <div class="rules">
      <section class="card">
        <h2>Rule-set versions</h2>
        {list.error && <p class="error">{list.error}</p>}
        <div class="scroll">
          <table data-testid="versions">
            <thead>
              <tr><th>Version</th><th>Author</th><th>Change</th><th>Tests</th><th>Saved</th></tr>
            </thead>
            <tbody>
              {versions.map((v) => (
                <tr key={v.version} class={open?.version === v.version ? 'selected' : ''} onClick={() => show(v.version)}
                  tabIndex={0} onKeyDown={(e) => e.key === 'Enter' && show(v.version)}>
                  <td>{v.version}{v.current ? ' (published)' : ''}</td>
                  <td>{v.author}</td>
                  <td>{v.message}</td>
                  <td>{v.tests_passed ? 'pass' : 'FAIL'}</td>
                  <td>{when(v.created_ms)}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      </section>
      {open && (
        <div class="editor-layout">
          <section class="card editor" data-testid="rule-editor">
            <h2>Version {open.version}{edited ? ' (edited, not saved)' : ''}</h2>
            <div class="tabs" role="tablist">
              <button role="tab" aria-selected={view === 'visual'} class={view === 'visual' ? 'active' : 'secondary'} onClick={() => setView('visual')}>Visual</button>
              <button role="tab" aria-selected={view === 'yaml'} class={view === 'yaml' ? 'active' : 'secondary'} onClick={() => setView('yaml')}>YAML</button>
            </div>
            <Validation parsedError={parsed.error} {...validation} />
            {view === 'visual' && parsed.value && (
              <VisualEditor text={text} doc={parsed.value} onText={setText} error={validation.error} />
            )}
            {view === 'visual' && !parsed.value && <p class="muted">Mend the YAML first; the visual editor shows a document that parses.</p>}
            {view === 'yaml' && (
              <textarea aria-label="document" spellcheck={false} value={text} onInput={(e) => setText(e.currentTarget.value)} />
            )}
            <div class="actions">
              <input aria-label="change note" placeholder="Change note" value={note} onInput={(e) => setNote(e.currentTarget.value)} />
              <button onClick={save} disabled={!note || !edited}>Save as a draft</button>
              <button class="secondary" onClick={() => setText(open.document)} disabled={!edited}>Discard changes</button>
              <button class="secondary" onClick={preview} disabled={edited} title={edited ? 'Save first: the impact is of a saved version' : ''}>
                Impact on everyone
              </button>
              {canPublish && (
                <button onClick={publish} disabled={open.current || edited}>
                  {published !== null && open.version < published ? 'Roll back to this version' : 'Publish'}
                </button>
              )}
            </div>
            {message && <p role="status">{message}</p>}
            <RulePreview document={text} />
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
          <ExpressionHelp />
        </div>
      )}
    </div>
  );
}

function Validation({ parsedError, tests, error, checking }: {
  parsedError: string | null;
  tests: TestRun | null;
  error: FieldError | null;
  checking: boolean;
}) {
  if (parsedError) return <p class="error" role="alert" data-testid="validation">YAML: {parsedError}</p>;
  if (error) return <p class="error" role="alert" data-testid="validation">{error.field}: {error.reason}</p>;
  if (!tests) return <p class="muted" data-testid="validation">{checking ? 'Checking…' : ''}</p>;
  return (
    <div data-testid="validation" class={tests.passed ? 'ok' : 'error'}>
      <p data-testid="tests"><strong>Tests: {tests.summary}</strong>{checking ? ' (checking again…)' : ''}</p>
      {!tests.passed && (
        <ul>{tests.cases.filter((c) => !c.passed).map((c) => <li key={c.name}>{c.name}: {c.failures.join('; ')}</li>)}</ul>
      )}
    </div>
  );
}
