import { useState } from 'preact/hooks';
import { api, ApiError, type AuditEntry, type Hold, type Job, type Whoami, when } from '../api';

interface Person {
  lifecycle: unknown;
  jobs: Job[];
  holds: Hold[];
  audit: AuditEntry[];
}

/** One person: lifecycle state and dated facts, jobs, held plans and audit timeline. */
export function People(_: { me: Whoami }) {
  const [key, setKey] = useState('');
  const [person, setPerson] = useState<Person | null>(null);
  const [message, setMessage] = useState('');
  const show = async (e: Event) => {
    e.preventDefault();
    const k = encodeURIComponent(key);
    try {
      const [lifecycle, jobs, holds, audit] = await Promise.all([
        api<unknown>('GET', `/api/v1/people/${k}/lifecycle`).catch(() => null),
        api<Job[]>('GET', `/api/v1/jobs?person=${k}&limit=50`),
        api<Hold[]>('GET', `/api/v1/holds?person=${k}&limit=100`),
        api<AuditEntry[]>('GET', `/api/v1/audit?person=${k}&limit=200`).catch(() => []),
      ]);
      setPerson({ lifecycle, jobs, holds, audit });
      setMessage('');
    } catch (err) {
      setMessage(err instanceof ApiError ? `${err.field}: ${err.reason}` : String(err));
    }
  };
  return (
    <section class="card">
      <h2>People</h2>
      <form class="filters" onSubmit={show}>
        <input aria-label="Person (source:id, as in the audit)" placeholder="Person (source:id, as in the audit)" value={key} onInput={(e) => setKey(e.currentTarget.value)} required />
        <button type="submit">Show</button>
      </form>
      {message && <p class="error">{message}</p>}
      {person && (
        <div class="person">
          <h3>Lifecycle</h3>
          <pre>{JSON.stringify(person.lifecycle, null, 2)}</pre>
          <h3>Jobs</h3>
          <ul>{person.jobs.map((j) => <li key={j.id}>#{j.id} {j.state} {j.last_error ?? j.hold_reason ?? ''} ({when(j.created_ms)})</li>)}</ul>
          <h3>Held plans</h3>
          <ul>{person.holds.map((h) => <li key={h.id}>{h.destination}: {h.state} {h.decided_by ? `by ${h.decided_by}` : ''}</li>)}</ul>
          <h3>Timeline</h3>
          <ol>{person.audit.map((e) => <li key={e.seq}>{when(e.ts_ms)} {e.kind} {e.destination ?? ''} ({e.actor})</li>)}</ol>
        </div>
      )}
    </section>
  );
}
