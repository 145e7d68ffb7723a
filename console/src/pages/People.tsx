import { useState } from 'preact/hooks';
import { api, describe, type AuditEntry, type Hold, type Job, type Whoami, query, when } from '../api';

interface Found {
  person_key: string;
  name: string | null;
  email: string | null;
  state: string | null;
}

interface Lifecycle {
  state: string;
  applied: string | null;
  facts: Record<string, unknown>;
  scheduled: { id: number; action: unknown; destination: string; due_ms: number; reason: string }[];
  sources: { source: string; source_record_id: string; kind: string; received_ms: number }[];
  accounts: { destination: string; anchor: string; managed_groups: string[] }[];
}

interface Person {
  key: string;
  lifecycle: Lifecycle | null;
  jobs: Job[];
  holds: Hold[];
  audit: AuditEntry[];
}

/** The dated facts worth reading, as the lifecycle keeps them. */
const FACTS = ['start_date', 'end_date', 'last_day', 'leave_from', 'leave_until', 'employment', 'time_zone', 'manager', 'hires'];

/** People found by name, email or key; one person's sources, state and dated facts, accounts in
 *  every destination, pending scheduled actions, jobs, held plans and audit timeline. */
export function People(_: { me: Whoami }) {
  const [text, setText] = useState('');
  const [found, setFound] = useState<Found[] | null>(null);
  const [person, setPerson] = useState<Person | null>(null);
  const [message, setMessage] = useState('');
  const search = async (e: Event) => {
    e.preventDefault();
    try {
      setFound(await api<Found[]>('GET', `/api/v1/people${query({ q: text, limit: 50 })}`));
      setMessage('');
    } catch (err) {
      setMessage(describe(err));
    }
  };
  const show = async (key: string) => {
    const k = encodeURIComponent(key);
    try {
      const [lifecycle, jobs, holds, audit] = await Promise.all([
        api<Lifecycle>('GET', `/api/v1/people/${k}/lifecycle`).catch(() => null),
        api<Job[]>('GET', `/api/v1/jobs?person=${k}&limit=50`),
        api<Hold[]>('GET', `/api/v1/holds?person=${k}&limit=100`),
        api<AuditEntry[]>('GET', `/api/v1/audit?person=${k}&limit=200`).catch(() => []),
      ]);
      setPerson({ key, lifecycle, jobs, holds, audit });
      setMessage('');
    } catch (err) {
      setMessage(describe(err));
    }
  };
  return (
    <section class="card">
      <h2>People</h2>
      <form class="filters" onSubmit={search}>
        <input aria-label="Find a person" placeholder="Name, email or key (hr:1001)" value={text}
          onInput={(e) => setText(e.currentTarget.value)} required maxLength={100} />
        <button type="submit">Find</button>
      </form>
      {message && <p class="error">{message}</p>}
      {found && (
        <div class="scroll">
          <table data-testid="people-found">
            <thead><tr><th>Name</th><th>Email</th><th>Key</th><th>State</th></tr></thead>
            <tbody>
              {found.length === 0 && <tr><td colSpan={4} class="muted">Nobody found.</td></tr>}
              {found.map((f) => (
                <tr key={f.person_key} class={person?.key === f.person_key ? 'selected' : ''} tabIndex={0}
                  onClick={() => show(f.person_key)} onKeyDown={(e) => e.key === 'Enter' && show(f.person_key)}>
                  <td>{f.name}</td>
                  <td>{f.email}</td>
                  <td>{f.person_key}</td>
                  <td>{f.state ?? 'not applied yet'}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
      {person && <PersonView person={person} />}
    </section>
  );
}

function PersonView({ person }: { person: Person }) {
  const life = person.lifecycle;
  return (
    <div class="person" data-testid="person">
      <h3>{person.key}{life ? `: ${life.state}` : ''}{life?.applied && life.applied !== life.state ? ` (applied: ${life.applied})` : ''}</h3>
      {life && (
        <>
          <dl class="kpis">
            {FACTS.filter((f) => life.facts[f] !== undefined && life.facts[f] !== null).map((f) => (
              <div key={f}><dt>{f.replace(/_/g, ' ')}</dt><dd>{String(life.facts[f])}</dd></div>
            ))}
          </dl>
          <h4>Sources</h4>
          <ul>{life.sources.map((s) => <li key={s.source}>{s.source}: record {s.source_record_id}, {s.kind} ({when(s.received_ms)})</li>)}</ul>
          <h4>Accounts</h4>
          <ul data-testid="person-accounts">
            {life.accounts.length === 0 && <li class="muted">none yet</li>}
            {life.accounts.map((a) => (
              <li key={a.destination}><strong>{a.destination}</strong>: {a.anchor}{a.managed_groups.length ? `, groups ${a.managed_groups.join(', ')}` : ''}</li>
            ))}
          </ul>
          <h4>Scheduled</h4>
          <ul>
            {life.scheduled.length === 0 && <li class="muted">nothing pending</li>}
            {life.scheduled.map((a) => <li key={a.id}>{when(a.due_ms)}: {typeof a.action === 'string' ? a.action : JSON.stringify(a.action)} in {a.destination} ({a.reason})</li>)}
          </ul>
        </>
      )}
      <h4>Jobs</h4>
      <ul>{person.jobs.map((j) => <li key={j.id}>#{j.id} {j.state} {j.last_error ?? j.hold_reason ?? ''} ({when(j.created_ms)})</li>)}</ul>
      <h4>Held plans</h4>
      <ul>{person.holds.map((h) => <li key={h.id}>{h.destination}: {h.state} {h.decided_by ? `by ${h.decided_by}` : ''}</li>)}</ul>
      <h4>Timeline</h4>
      <ol>{person.audit.map((e) => <li key={e.seq}>{when(e.ts_ms)} {e.kind} {e.destination ?? ''} ({e.actor})</li>)}</ol>
    </div>
  );
}
