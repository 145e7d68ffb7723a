import { useState } from 'preact/hooks';
import { api, type Whoami, query } from '../api';
import { useLoad } from './useLoad';
import { LineChart, type Series } from '../charts/LineChart';

interface Kpis {
  events: number;
  completed_jobs: number;
  dead_jobs: number;
  time_to_provision_p50_ms: number | null;
  time_to_provision_p95_ms: number | null;
  first_day_access_rate: number | null;
  errors_per_1000_events: number;
}

interface SourcePoint {
  start_ms: number;
  source: string;
  events: number;
  provisioned: number;
  time_to_provision_p50_ms: number | null;
  first_day_ready: number;
  first_day_total: number;
  failures: number;
}

interface DestinationPoint {
  start_ms: number;
  destination: string;
  operations: number;
  failures: number;
}

interface KpiSeries {
  since_ms: number;
  until_ms: number;
  bucket_ms: number;
  sources: SourcePoint[];
  destinations: DestinationPoint[];
}

const ms = (v: number | null) => (v === null ? '–' : v < 1000 ? `${Math.round(v)} ms` : v < 120_000 ? `${(v / 1000).toFixed(1)} s` : `${(v / 60_000).toFixed(0)} min`);
const percent = (v: number) => `${(v * 100).toFixed(0)} %`;
const plain = (v: number) => (v >= 100 ? v.toFixed(0) : v.toFixed(1));

/** One line per key (a source or a destination) over every bucket of the window. */
function lines<P extends { start_ms: number }>(
  buckets: number[],
  points: P[],
  key: (p: P) => string,
  value: (p: P) => number | null,
): Series[] {
  const names = [...new Set(points.map(key))].sort();
  return names.map((name) => ({
    name,
    values: buckets.map((b) => {
      const p = points.find((q) => q.start_ms === b && key(q) === name);
      return p ? value(p) : null;
    }),
  }));
}

/** The KPIs now, and over time per source and per destination. */
export function Dashboard(_: { me: Whoami }) {
  const [days, setDays] = useState(30);
  const [bucket, setBucket] = useState<'day' | 'hour'>('day');
  const kpis = useLoad(() => api<Kpis>('GET', '/api/v1/kpis'));
  const series = useLoad(
    () => api<KpiSeries>('GET', `/api/v1/kpis/series${query({ since_ms: Date.now() - days * 86_400_000, bucket })}`),
    [days, bucket],
  );
  const k = kpis.data;
  const s = series.data;
  const buckets: number[] = [];
  if (s) for (let t = s.since_ms; t < s.until_ms; t += s.bucket_ms) buckets.push(t);
  const eventsIn = (b: number) => (s?.sources ?? []).filter((p) => p.start_ms === b).reduce((n, p) => n + p.events, 0);
  return (
    <>
      <section class="card">
        <h2>Dashboard</h2>
        {kpis.error && <p class="error">{kpis.error}</p>}
        {k && (
          <dl class="kpis" data-testid="kpis">
            <dt>Events</dt><dd>{k.events}</dd>
            <dt>Jobs done</dt><dd>{k.completed_jobs}</dd>
            <dt>Dead letters</dt><dd>{k.dead_jobs}</dd>
            <dt>Time to provision (p50 / p95)</dt><dd>{ms(k.time_to_provision_p50_ms)} / {ms(k.time_to_provision_p95_ms)}</dd>
            <dt>First-day access</dt><dd>{k.first_day_access_rate === null ? '–' : percent(k.first_day_access_rate)}</dd>
            <dt>Errors per 1,000 events</dt><dd>{k.errors_per_1000_events.toFixed(2)}</dd>
          </dl>
        )}
      </section>
      <section class="card">
        <h2>Over time</h2>
        <div class="filters">
          <select aria-label="period" value={days} onChange={(e) => setDays(Number(e.currentTarget.value))}>
            <option value={2}>2 days</option>
            <option value={7}>7 days</option>
            <option value={30}>30 days</option>
            <option value={90}>90 days</option>
          </select>
          <select aria-label="per" value={bucket} onChange={(e) => setBucket(e.currentTarget.value as 'day' | 'hour')}>
            <option value="day">per day</option>
            <option value="hour">per hour</option>
          </select>
        </div>
        {series.error && <p class="error">{series.error}</p>}
        {s && (
          <div class="charts" data-testid="charts">
            <LineChart title="Time to provision (median), per source" buckets={buckets} format={ms} hourly={bucket === 'hour'}
              series={lines(buckets, s.sources.filter((p) => p.provisioned > 0), (p) => p.source, (p) => p.time_to_provision_p50_ms)} />
            <LineChart title="First-day access, per source" buckets={buckets} format={percent} hourly={bucket === 'hour'}
              series={lines(buckets, s.sources.filter((p) => p.first_day_total > 0), (p) => p.source, (p) => p.first_day_ready / p.first_day_total)} />
            <LineChart title="Errors per 1,000 events, per destination" buckets={buckets} format={plain} hourly={bucket === 'hour'}
              series={lines(buckets, s.destinations, (p) => p.destination, (p) => {
                const events = eventsIn(p.start_ms);
                return events > 0 ? (p.failures * 1000) / events : null;
              })} />
            <LineChart title="Errors per 1,000 events, per source" buckets={buckets} format={plain} hourly={bucket === 'hour'}
              series={lines(buckets, s.sources, (p) => p.source, (p) => (p.failures * 1000) / p.events)} />
            <LineChart title="Events, per source" buckets={buckets} format={plain} hourly={bucket === 'hour'}
              series={lines(buckets, s.sources, (p) => p.source, (p) => p.events)} />
          </div>
        )}
      </section>
    </>
  );
}
