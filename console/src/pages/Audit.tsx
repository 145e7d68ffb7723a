import { useState } from 'preact/hooks';
import { api, type AuditEntry, query, type Whoami, when, describe } from '../api';

/** The audit trail: search by person, kind, actor and time; verify the chain; export. */
export function Audit(_: { me: Whoami }) {
  const [person, setPerson] = useState('');
  const [kind, setKind] = useState('');
  const [actor, setActor] = useState('');
  const [since, setSince] = useState('');
  const [entries, setEntries] = useState<AuditEntry[]>([]);
  const [message, setMessage] = useState('');
  const params = () => ({
    person,
    kind,
    since_ms: since ? Date.parse(since) : undefined,
  });
  const search = async (e?: Event) => {
    e?.preventDefault();
    try {
      const found = await api<AuditEntry[]>('GET', `/api/v1/audit${query({ ...params(), limit: 500 })}`);
      setEntries(actor ? found.filter((x) => x.actor.includes(actor)) : found);
      setMessage('');
    } catch (err) {
      setMessage(describe(err));
    }
  };
  const verify = async () => {
    try {
      const report = await api<{ ok: boolean; problem: { reason: string } | null }>('GET', '/api/v1/audit/verify');
      setMessage(report.ok ? 'The audit chain verifies.' : `The chain does not verify: ${report.problem?.reason}`);
    } catch (err) {
      setMessage(describe(err));
    }
  };
  return (
    <section class="card">
      <h2>Audit</h2>
      <form class="filters" onSubmit={search}>
        <input aria-label="Person (source:id)" placeholder="Person (source:id)" value={person} onInput={(e) => setPerson(e.currentTarget.value)} />
        <input aria-label="Kind (plan., job.)" placeholder="Kind (plan., job.)" value={kind} onInput={(e) => setKind(e.currentTarget.value)} />
        <input aria-label="Actor" placeholder="Actor" value={actor} onInput={(e) => setActor(e.currentTarget.value)} />
        <input type="datetime-local" aria-label="since" value={since} onInput={(e) => setSince(e.currentTarget.value)} />
        <button type="submit">Search</button>
        <button type="button" class="secondary" onClick={verify}>Verify</button>
        <a class="button secondary" download="tenure-audit.csv" href={`/api/v1/audit${query({ ...params(), format: 'csv' })}`}>Export CSV</a>
      </form>
      {message && <p role="status">{message}</p>}
      <table data-testid="audit">
        <thead>
          <tr><th>#</th><th>When</th><th>Kind</th><th>Actor</th><th>Person</th><th>Destination</th><th>Details</th></tr>
        </thead>
        <tbody>
          {entries.map((e) => (
            <tr key={e.seq}>
              <td>{e.seq}</td>
              <td>{when(e.ts_ms)}</td>
              <td>{e.kind}</td>
              <td>{e.actor}</td>
              <td>{e.person_key}</td>
              <td>{e.destination}</td>
              <td><details><summary>data</summary><pre>{JSON.stringify(e.data, null, 2)}</pre></details></td>
            </tr>
          ))}
        </tbody>
      </table>
    </section>
  );
}
