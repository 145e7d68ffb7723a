// A line chart in SVG: one line per series over the same time buckets, a legend, and the numbers
// as a table beneath for whoever cannot see the lines. Gaps (null) break a line.

export interface Series {
  name: string;
  values: (number | null)[];
}

interface Props {
  title: string;
  /** Each bucket's first millisecond. */
  buckets: number[];
  series: Series[];
  format: (v: number) => string;
  /** Hourly buckets show the hour. */
  hourly?: boolean;
}

const COLORS = ['#2f5bd3', '#c2571a', '#1d7a46', '#8a3fb8', '#b02a4a', '#3d7f91'];
const W = 640;
const H = 200;
const PAD = { left: 56, right: 12, top: 12, bottom: 28 };

export function LineChart({ title, buckets, series, format, hourly }: Props) {
  const label = (ms: number) => {
    const iso = new Date(ms).toISOString();
    return hourly ? iso.slice(5, 13).replace('T', ' ') + 'h' : iso.slice(5, 10);
  };
  const all = series.flatMap((s) => s.values.filter((v): v is number => v !== null));
  const max = Math.max(1e-9, ...all) * 1.1;
  const x = (i: number) => PAD.left + (buckets.length <= 1 ? 0 : (i * (W - PAD.left - PAD.right)) / (buckets.length - 1));
  const y = (v: number) => H - PAD.bottom - (v / max) * (H - PAD.top - PAD.bottom);
  const every = Math.max(1, Math.ceil(buckets.length / 8));
  return (
    <figure class="chart">
      <figcaption>{title}</figcaption>
      {all.length === 0 ? (
        <p class="muted">No data in this period.</p>
      ) : (
        <svg viewBox={`0 0 ${W} ${H}`} role="img" aria-label={`${title}: ${series.map((s) => s.name).join(', ')}`}>
          {[0, 0.5, 1].map((f) => (
            <g key={f}>
              <line x1={PAD.left} x2={W - PAD.right} y1={y(max * f / 1.1)} y2={y(max * f / 1.1)} class="grid" />
              <text x={PAD.left - 6} y={y(max * f / 1.1) + 4} text-anchor="end" class="tick">{format(max * f / 1.1)}</text>
            </g>
          ))}
          {buckets.map((b, i) => i % every === 0 && (
            <text key={b} x={x(i)} y={H - 8} text-anchor="middle" class="tick">{label(b)}</text>
          ))}
          {series.map((s, n) => {
            const color = COLORS[n % COLORS.length];
            const runs: string[][] = [[]];
            s.values.forEach((v, i) => (v === null ? runs.push([]) : runs[runs.length - 1].push(`${x(i)},${y(v)}`)));
            return (
              <g key={s.name} stroke={color} fill={color}>
                {runs.filter((r) => r.length > 1).map((r, k) => <polyline key={k} points={r.join(' ')} fill="none" stroke-width="2" />)}
                {s.values.map((v, i) => v !== null && <circle key={i} cx={x(i)} cy={y(v)} r="3" />)}
              </g>
            );
          })}
        </svg>
      )}
      <ul class="legend">
        {series.map((s, n) => (
          <li key={s.name}><span class="swatch" data-color={n % COLORS.length} />{s.name}</li>
        ))}
      </ul>
      <details>
        <summary>The numbers</summary>
        <div class="scroll">
          <table>
            <thead><tr><th>From</th>{series.map((s) => <th key={s.name}>{s.name}</th>)}</tr></thead>
            <tbody>
              {buckets.map((b, i) => (
                <tr key={b}><td>{label(b)}</td>{series.map((s) => <td key={s.name}>{s.values[i] === null ? '–' : format(s.values[i] as number)}</td>)}</tr>
              ))}
            </tbody>
          </table>
        </div>
      </details>
    </figure>
  );
}
