import { useState } from 'preact/hooks';
import { api, ApiError, type AuditEntry, type Job, when } from '../api';
import { useLoad } from './useLoad';

const STATES = ['available', 'running', 'retryable', 'held', 'dead', 'completed', 'cancelled'] as const;

/** The queue by state: a state's newest jobs, and a cancel for those not yet at an end. */
export function Queue() {
  const [state, setState] = useState<(typeof STATES)[number]>('available');
  const jobs = useLoad(() => api<Job[]>('GET', `/api/v1/jobs?state=${state}&limit=100`), [state]);
  const [message, setMessage] = useState('');
  const cancel = async (id: number) => {
    try {
      await api('POST', `/api/v1/jobs/${id}/cancel`);
      setMessage(`Job ${id} cancelled`);
      jobs.reload();
    } catch (e) {
      setMessage(e instanceof ApiError ? `job ${id}: ${e.reason}` : String(e));
    }
  };
  const cancellable = state === 'available' || state === 'retryable' || state === 'held';
  return (
    <section class="card" data-testid="queue">
      <h2>Jobs by state</h2>
      <div class="tabs" role="tablist">
        {STATES.map((s) => (
          <button key={s} role="tab" aria-selected={s === state} class={s === state ? 'active' : 'secondary'} onClick={() => setState(s)}>{s}</button>
        ))}
      </div>
      {jobs.error && <p class="error">{jobs.error}</p>}
      <div class="scroll">
        <table>
          <thead><tr><th>Job</th><th>Person</th><th>Attempts</th><th>Made</th><th>Why</th><th /></tr></thead>
          <tbody>
            {(jobs.data ?? []).length === 0 && <tr><td colSpan={6} class="muted">No {state} jobs.</td></tr>}
            {(jobs.data ?? []).map((j) => (
              <tr key={j.id}>
                <td>{j.id}</td>
                <td>{j.person_key}</td>
                <td>{j.attempts}</td>
                <td>{when(j.created_ms)}</td>
                <td>{j.last_error ?? j.hold_reason ?? ''}</td>
                <td>{cancellable && <button class="secondary" onClick={() => cancel(j.id)}>Cancel</button>}</td>
              </tr>
            ))}
          </tbody>
        </table>
      </div>
      {message && <p role="status">{message}</p>}
    </section>
  );
}

interface Observed {
  operations: { op: string; key: string; target: string | null; destructive: boolean }[];
}

/** What destinations in observe mode would have done: their plans, audited and never applied. */
export function ObservedPlans() {
  const entries = useLoad(() => api<AuditEntry[]>('GET', '/api/v1/audit?kind=plan.observed&limit=200'));
  const rows = (entries.data ?? []).slice().reverse();
  return (
    <section class="card" data-testid="observed">
      <h2>Observed: what observe mode would have done ({rows.length})</h2>
      {entries.error && <p class="muted">{entries.error}</p>}
      <div class="scroll">
        <table>
          <thead><tr><th>When</th><th>Person</th><th>Destination</th><th>Would have done</th></tr></thead>
          <tbody>
            {rows.map((e) => (
              <tr key={e.seq}>
                <td>{when(e.ts_ms)}</td>
                <td>{e.person_key}</td>
                <td>{e.destination}</td>
                <td>{((e.data as Observed).operations ?? []).map((o) => (o.target ? `${o.op} ${o.target}` : o.op)).join(', ')}</td>
              </tr>
            ))}
          </tbody>
        </table>
      </div>
    </section>
  );
}
