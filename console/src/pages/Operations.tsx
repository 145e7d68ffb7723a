import { useState } from 'preact/hooks';
import { api, ApiError, type Hold, type Job, type Whoami, when, describe } from '../api';
import { useLoad } from './useLoad';
import { Reconciliation } from './Reconciliation';
import { ObservedPlans, Queue } from './Queue';

/** Held and observed plans, dead and held jobs to replay, conflicts, guards, reconciliation, the
 *  queue by state. */
export function Operations(_: { me: Whoami }) {
  return (
    <>
      <HeldPlans />
      <ObservedPlans />
      <Jobs state="dead" title="Dead letters" />
      <Jobs state="held" title="Held jobs" />
      <Conflicts />
      <Guards />
      <Reconciliation />
      <Queue />
    </>
  );
}

function HeldPlans() {
  const holds = useLoad(() => api<Hold[]>('GET', '/api/v1/holds?state=pending&limit=1000'));
  const [chosen, setChosen] = useState<Set<number>>(new Set());
  const [note, setNote] = useState('');
  const [message, setMessage] = useState('');
  const toggle = (id: number) => {
    const next = new Set(chosen);
    next.has(id) ? next.delete(id) : next.add(id);
    setChosen(next);
  };
  const decide = async (decision: 'approve' | 'reject', selection: object) => {
    try {
      const result = await api<{ decided: Hold[]; not_pending: number[] }>('POST', '/api/v1/holds/decide', {
        decision,
        note: note || undefined,
        ...selection,
      });
      setMessage(`${decision === 'approve' ? 'Approved' : 'Rejected'} ${result.decided.length} plan(s)`);
      setChosen(new Set());
      holds.reload();
    } catch (e) {
      setMessage(describe(e));
    }
  };
  const rows = holds.data ?? [];
  return (
    <section class="card" data-testid="held-plans">
      <h2>Held plans ({rows.length})</h2>
      <p class="muted">Supervised destinations wait for a decision. An approved plan is planned again before anything is written.</p>
      {holds.error && <p class="error">{holds.error}</p>}
      <table>
        <thead>
          <tr><th></th><th>Person</th><th>Destination</th><th>Operations</th><th>Held since</th></tr>
        </thead>
        <tbody>
          {rows.map((h) => (
            <tr key={h.id}>
              <td><input type="checkbox" aria-label={`hold ${h.id}`} checked={chosen.has(h.id)} onChange={() => toggle(h.id)} /></td>
              <td>{h.person_key}</td>
              <td>{h.destination}</td>
              <td>
                <details>
                  <summary>{h.operations.map((o) => `${o.op}${o.target ? ` ${o.target}` : ''}`).join(', ')}</summary>
                  <pre>{JSON.stringify(h.operations, null, 2)}</pre>
                </details>
              </td>
              <td>{when(h.created_ms)}</td>
            </tr>
          ))}
        </tbody>
      </table>
      <div class="actions">
        <input aria-label="Note (why)" placeholder="Note (why)" value={note} onInput={(e) => setNote(e.currentTarget.value)} />
        <button disabled={!chosen.size} onClick={() => decide('approve', { ids: [...chosen] })}>Approve selected</button>
        <button disabled={!chosen.size} class="danger" onClick={() => decide('reject', { ids: [...chosen] })}>Reject selected</button>
        <button disabled={!rows.length} onClick={() => decide('approve', { all: true })}>Approve all</button>
      </div>
      {message && <p role="status">{message}</p>}
    </section>
  );
}

function Jobs({ state, title }: { state: 'dead' | 'held'; title: string }) {
  const jobs = useLoad(() => api<Job[]>('GET', `/api/v1/jobs?state=${state}&limit=200`));
  const [message, setMessage] = useState('');
  const replay = async (ids: number[]) => {
    let done = 0;
    const refused: string[] = [];
    for (const id of ids) {
      try {
        await api('POST', `/api/v1/jobs/${id}/replay`);
        done += 1;
      } catch (e) {
        refused.push(e instanceof ApiError ? `job ${id}: ${e.reason}` : String(e));
      }
    }
    setMessage([`Replayed ${done} job(s)`, ...refused].join('; '));
    jobs.reload();
  };
  const rows = jobs.data ?? [];
  return (
    <section class="card" data-testid={`jobs-${state}`}>
      <h2>{title} ({rows.length})</h2>
      {jobs.error && <p class="error">{jobs.error}</p>}
      <table>
        <thead>
          <tr><th>Job</th><th>Person</th><th>Attempts</th><th>Why</th><th></th></tr>
        </thead>
        <tbody>
          {rows.map((j) => (
            <tr key={j.id}>
              <td>{j.id}</td>
              <td>{j.person_key}</td>
              <td>{j.attempts}</td>
              <td>{j.last_error ?? j.hold_reason}</td>
              <td><button onClick={() => replay([j.id])}>Replay</button></td>
            </tr>
          ))}
        </tbody>
      </table>
      {rows.length > 1 && <button onClick={() => replay(rows.map((j) => j.id))}>Replay all</button>}
      {message && <p role="status">{message}</p>}
    </section>
  );
}

interface Guard {
  destination: string;
  tripped: boolean;
  reason: string | null;
  tripped_ms: number | null;
}

function Guards() {
  const guards = useLoad(() => api<Guard[]>('GET', '/api/v1/guards'));
  const tripped = (guards.data ?? []).filter((g) => g.tripped);
  const approve = async (destination: string) => {
    await api('POST', `/api/v1/guards/${encodeURIComponent(destination)}/approve`).catch(() => undefined);
    guards.reload();
  };
  return (
    <section class="card">
      <h2>Tripped mass-change guards ({tripped.length})</h2>
      {guards.error && <p class="error">{guards.error}</p>}
      <ul>
        {tripped.map((g) => (
          <li key={g.destination}>
            {g.destination}: {g.reason} ({when(g.tripped_ms)}) <button onClick={() => approve(g.destination)}>Approve</button>
          </li>
        ))}
      </ul>
    </section>
  );
}

interface Conflict {
  id: number;
  destination: string;
  person_key: string;
  kind: string;
  candidates: string[];
}

function Conflicts() {
  const conflicts = useLoad(() => api<Conflict[]>('GET', '/api/v1/conflicts'));
  const [message, setMessage] = useState('');
  const decide = async (id: number, decision: object) => {
    try {
      await api('POST', `/api/v1/conflicts/${id}/resolve`, decision);
      setMessage(`Conflict ${id} decided`);
      conflicts.reload();
    } catch (e) {
      setMessage(describe(e));
    }
  };
  const rows = conflicts.data ?? [];
  return (
    <section class="card">
      <h2>Conflicts awaiting a decision ({rows.length})</h2>
      {conflicts.error && <p class="error">{conflicts.error}</p>}
      <table>
        <thead>
          <tr><th>Person</th><th>Destination</th><th>Why</th><th>Accounts found</th><th></th></tr>
        </thead>
        <tbody>
          {rows.map((c) => (
            <tr key={c.id}>
              <td>{c.person_key}</td>
              <td>{c.destination}</td>
              <td>{c.kind}</td>
              <td>
                {c.candidates.map((anchor) => (
                  <button class="secondary" onClick={() => decide(c.id, { decision: 'merge', anchor })}>Take over {anchor}</button>
                ))}
              </td>
              <td><button class="secondary" onClick={() => decide(c.id, { decision: 'skip' })}>Skip</button></td>
            </tr>
          ))}
        </tbody>
      </table>
      {message && <p role="status">{message}</p>}
    </section>
  );
}
