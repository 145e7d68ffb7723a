import { useState } from 'preact/hooks';
import { api, when, describe } from '../api';
import { useLoad } from './useLoad';

interface ReportSummary {
  id: number;
  summary: { people: number; accounts: number; drift: number; repairs: number; dry_run: boolean; by_kind: Record<string, number> };
  created_ms: number;
}

interface Report {
  id: number;
  actor: string;
  dry_run: boolean;
  people: number;
  accounts: number;
  drift: { person_key: string; destination: string; kind: string; detail: string; repairable: boolean }[];
  repairs: string[];
}

/** Reconciliation: the destinations compared with what the rules want (run, read, repair) and
 *  the access review (who holds what, and the rule that grants it) as CSV. */
export function Reconciliation() {
  const reports = useLoad(() => api<ReportSummary[]>('GET', '/api/v1/reconciliations'));
  const [open, setOpen] = useState<Report | null>(null);
  const [message, setMessage] = useState('');
  const fail = (e: unknown) => setMessage(describe(e));
  const show = (id: number) => api<Report>('GET', `/api/v1/reconciliations/${id}`).then(setOpen, fail);
  const run = async (dryRun: boolean) => {
    try {
      setMessage('Comparing every destination with what the rules want…');
      const report = await api<Report>('POST', '/api/v1/reconcile', { dry_run: dryRun });
      setMessage(`Report ${report.id}: ${report.drift.length} difference(s), ${report.repairs.length} repair(s) queued`);
      setOpen(report);
      reports.reload();
    } catch (e) {
      fail(e);
    }
  };
  return (
    <section class="card" data-testid="reconciliation">
      <h2>Reconciliation and access review</h2>
      <div class="actions">
        <button class="secondary" onClick={() => run(true)}>Compare (dry run)</button>
        <button onClick={() => run(false)}>Compare and repair</button>
        <a class="button secondary" download="tenure-access-review.csv" href="/api/v1/access-review">Download the access review (CSV)</a>
      </div>
      {message && <p role="status">{message}</p>}
      {reports.error && <p class="error">{reports.error}</p>}
      <div class="scroll">
        <table>
          <thead>
            <tr><th>Report</th><th>When</th><th>People</th><th>Accounts</th><th>Differences</th><th>Repairs</th><th /></tr>
          </thead>
          <tbody>
            {(reports.data ?? []).map((r) => (
              <tr key={r.id} class={open?.id === r.id ? 'selected' : ''}>
                <td>{r.id}{r.summary.dry_run ? ' (dry run)' : ''}</td>
                <td>{when(r.created_ms)}</td>
                <td>{r.summary.people}</td>
                <td>{r.summary.accounts}</td>
                <td>{Object.entries(r.summary.by_kind ?? {}).map(([k, n]) => `${k} ${n}`).join(', ') || 0}</td>
                <td>{r.summary.repairs}</td>
                <td><button class="link" onClick={() => show(r.id)}>Open</button></td>
              </tr>
            ))}
          </tbody>
        </table>
      </div>
      {open && (
        <div data-testid="report">
          <h3>Report {open.id} by {open.actor}: {open.drift.length} difference(s)</h3>
          <ul>
            {open.drift.map((d, i) => (
              <li key={i}>
                <strong>{d.person_key}</strong> in {d.destination}: {d.kind}, {d.detail}
                {d.repairable ? '' : ' (not repaired: a person decides)'}
              </li>
            ))}
          </ul>
        </div>
      )}
    </section>
  );
}
