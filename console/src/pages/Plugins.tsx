import { useState } from 'preact/hooks';
import { api, type Whoami, when, describe } from '../api';
import { useLoad } from './useLoad';

interface VersionView {
  version: string;
  sha256: string;
  signer: string | null;
  uploaded_by: string;
  uploaded_ms: number;
  size_bytes: number;
  active: boolean;
}

interface PluginView {
  name: string;
  kind: string;
  active: string | null;
  grants: { http: string[]; ldap: string[]; kv: boolean } | null;
  versions: VersionView[];
}

/** What a plugin may reach, in words. */
function reach(g: PluginView['grants']): string {
  if (!g) return 'not loaded';
  const parts = [
    ...g.http.map((c) => `HTTP connection ${c}`),
    ...g.ldap.map((c) => `LDAP connection ${c}`),
    ...(g.kv ? ['its key-value store'] : []),
  ];
  return parts.length ? parts.join(', ') : 'nothing outside itself';
}

interface Health {
  destination: string;
  connector: string;
  last_success_ms: number | null;
  last_error: { at_ms: number; class: string; message: string } | null;
  held_back_ms: number | null;
  held_back_because: string | null;
}

/** Each destination's health: last success, last error, held back after a 429. */
function Connections() {
  const health = useLoad(() => api<Health[]>('GET', '/api/v1/connections'));
  return (
    <section class="card" data-testid="connections">
      <h2>Connections</h2>
      {health.error && <p class="error">{health.error}</p>}
      <table>
        <thead>
          <tr><th>Destination</th><th>Connector</th><th>Last success</th><th>Last error</th><th>Rate limit</th></tr>
        </thead>
        <tbody>
          {(health.data ?? []).map((h) => (
            <tr key={h.destination}>
              <td>{h.destination}</td>
              <td>{h.connector}</td>
              <td>{when(h.last_success_ms) || 'not since start'}</td>
              <td>{h.last_error ? `${when(h.last_error.at_ms)} ${h.last_error.class}: ${h.last_error.message}` : ''}</td>
              <td>{h.held_back_ms ? `held back ${Math.ceil(h.held_back_ms / 1000)} s: ${h.held_back_because}` : 'ok'}</td>
            </tr>
          ))}
        </tbody>
      </table>
    </section>
  );
}

/** The tenant's plugins (each version with its signer, activation and rollback) and connections. */
export function Plugins(props: { me: Whoami }) {
  return (
    <>
      <PluginVersions {...props} />
      <Connections />
    </>
  );
}

function PluginVersions(_: { me: Whoami }) {
  const list = useLoad(() => api<{ plugins: PluginView[] }>('GET', '/api/v1/plugins'));
  const [message, setMessage] = useState('');
  const act = async (path: string, body: object, done: string) => {
    try {
      await api('POST', path, body);
      setMessage(done);
      list.reload();
    } catch (e) {
      setMessage(describe(e));
    }
  };
  return (
    <section class="card">
      <h2>Plugins</h2>
      {list.error && <p class="error">{list.error}</p>}
      {message && <p role="status">{message}</p>}
      {(list.data?.plugins ?? []).map((p) => (
        <div key={p.name} class="plugin">
          <h3>
            {p.name} <span class="muted">({p.kind}) active: {p.active ?? 'none'}</span>{' '}
            <button class="secondary" onClick={() => act(`/api/v1/plugins/${p.name}/rollback`, {}, `${p.name} rolled back`)}>
              Roll back
            </button>
          </h3>
          <p data-testid="grants">May use: {reach(p.grants)}</p>
          <table>
            <thead>
              <tr><th>Version</th><th>Signed by</th><th>Uploaded</th><th>Size</th><th></th></tr>
            </thead>
            <tbody>
              {p.versions.map((v) => (
                <tr key={v.version}>
                  <td>{v.version}{v.active ? ' (active)' : ''}</td>
                  <td>{v.signer ?? 'unsigned'}</td>
                  <td>{v.uploaded_by} {when(v.uploaded_ms)}</td>
                  <td>{(v.size_bytes / 1024).toFixed(0)} KiB</td>
                  <td>
                    {!v.active && (
                      <button onClick={() => act(`/api/v1/plugins/${p.name}/activate`, { version: v.version }, `${p.name} ${v.version} is active`)}>
                        Activate
                      </button>
                    )}
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      ))}
    </section>
  );
}
