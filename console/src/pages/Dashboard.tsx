import { api, type Whoami } from '../api';
import { useLoad } from './useLoad';

interface Kpis {
  events: number;
  completed_jobs: number;
  dead_jobs: number;
  time_to_provision_p50_ms: number | null;
  time_to_provision_p95_ms: number | null;
  first_day_access_rate: number | null;
  errors_per_1000_events: number;
}

const ms = (v: number | null) => (v === null ? '–' : v < 1000 ? `${v} ms` : `${(v / 1000).toFixed(1)} s`);

/** The KPIs: time to provision, first-day access, errors per 1,000 events. */
export function Dashboard(_: { me: Whoami }) {
  const kpis = useLoad(() => api<Kpis>('GET', '/api/v1/kpis'));
  const k = kpis.data;
  return (
    <section class="card">
      <h2>Dashboard</h2>
      {kpis.error && <p class="error">{kpis.error}</p>}
      {k && (
        <dl class="kpis">
          <dt>Events</dt><dd>{k.events}</dd>
          <dt>Jobs done</dt><dd>{k.completed_jobs}</dd>
          <dt>Dead letters</dt><dd>{k.dead_jobs}</dd>
          <dt>Time to provision (p50 / p95)</dt><dd>{ms(k.time_to_provision_p50_ms)} / {ms(k.time_to_provision_p95_ms)}</dd>
          <dt>First-day access</dt><dd>{k.first_day_access_rate === null ? '–' : `${(k.first_day_access_rate * 100).toFixed(1)} %`}</dd>
          <dt>Errors per 1,000 events</dt><dd>{k.errors_per_1000_events.toFixed(2)}</dd>
        </dl>
      )}
    </section>
  );
}
