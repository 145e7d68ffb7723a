import { useState } from 'preact/hooks';
import { api, describe, type Whoami, when } from '../api';
import { useLoad } from './useLoad';

const PEOPLE_ROLES = ['owner', 'hr-admin', 'it-admin', 'operator', 'auditor'] as const;
const MACHINE_ROLES = ['source', 'hr', 'it', 'auditor'] as const;

interface User {
  login: string;
  display_name: string;
  roles: string[];
  disabled: boolean;
  failed_attempts: number;
  locked_until_ms: number | null;
  created_ms: number;
  last_sign_in_ms: number | null;
}

interface Token {
  name: string;
  role: string;
  sources: string[];
  created_by: string;
  created_ms: number;
}

/** Who may use Tenure: people's accounts (owners) and API tokens for machines (owners, IT admins). */
export function Access({ me }: { me: Whoami }) {
  return (
    <>
      {me.roles.includes('owner') && <Accounts />}
      <Tokens />
    </>
  );
}

function Accounts() {
  const users = useLoad(() => api<User[]>('GET', '/api/v1/users'));
  const [message, setMessage] = useState('');
  const [login, setLogin] = useState('');
  const [name, setName] = useState('');
  const [password, setPassword] = useState('');
  const [roles, setRoles] = useState<Set<string>>(new Set());
  const run = (what: () => Promise<string>) => what().then(setMessage, (e) => setMessage(describe(e))).finally(users.reload);
  const create = (e: Event) => {
    e.preventDefault();
    run(async () => {
      await api('POST', '/api/v1/users', { login, display_name: name || undefined, roles: [...roles], password });
      setLogin('');
      setName('');
      setPassword('');
      setRoles(new Set());
      return `Account ${login} made`;
    });
  };
  const change = (user: User, body: object, done: string) =>
    run(async () => {
      await api('POST', `/api/v1/users/${encodeURIComponent(user.login)}`, body);
      return done;
    });
  const toggle = (set: Set<string>, role: string) => {
    const next = new Set(set);
    next.has(role) ? next.delete(role) : next.add(role);
    return next;
  };
  return (
    <section class="card" data-testid="accounts">
      <h2>People's accounts</h2>
      {users.error && <p class="error">{users.error}</p>}
      <div class="scroll">
        <table>
          <thead>
            <tr><th>Login</th><th>Name</th><th>Roles</th><th>Last sign-in</th><th>State</th><th /></tr>
          </thead>
          <tbody>
            {(users.data ?? []).map((u) => (
              <tr key={u.login}>
                <td>{u.login}</td>
                <td>{u.display_name}</td>
                <td>
                  {PEOPLE_ROLES.map((r) => (
                    <label class="check" key={r}>
                      <input type="checkbox" checked={u.roles.includes(r)}
                        onChange={() => change(u, { roles: [...toggle(new Set(u.roles), r)] }, `Roles of ${u.login} changed`)} /> {r}
                    </label>
                  ))}
                </td>
                <td>{when(u.last_sign_in_ms)}</td>
                <td>{u.disabled ? 'disabled' : u.locked_until_ms && u.locked_until_ms > Date.now() ? 'locked' : 'active'}</td>
                <td>
                  <button class="secondary" onClick={() => change(u, { disabled: !u.disabled }, `${u.login} ${u.disabled ? 'enabled' : 'disabled'}`)}>
                    {u.disabled ? 'Enable' : 'Disable'}
                  </button>
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      </div>
      <form class="filters" onSubmit={create}>
        <input aria-label="login" placeholder="Login" value={login} onInput={(e) => setLogin(e.currentTarget.value)} required />
        <input aria-label="name" placeholder="Name" value={name} onInput={(e) => setName(e.currentTarget.value)} />
        <input aria-label="password" type="password" placeholder="Password (12 or more characters)" autocomplete="new-password"
          value={password} onInput={(e) => setPassword(e.currentTarget.value)} required />
        <span class="roles">
          {PEOPLE_ROLES.map((r) => (
            <label class="check" key={r}>
              <input type="checkbox" checked={roles.has(r)} onChange={() => setRoles(toggle(roles, r))} /> {r}
            </label>
          ))}
        </span>
        <button type="submit">Make the account</button>
      </form>
      {message && <p role="status">{message}</p>}
    </section>
  );
}

function Tokens() {
  const tokens = useLoad(() => api<Token[]>('GET', '/api/v1/tokens'));
  const [message, setMessage] = useState('');
  const [made, setMade] = useState<{ name: string; token: string } | null>(null);
  const [name, setName] = useState('');
  const [role, setRole] = useState<string>('source');
  const [sources, setSources] = useState('');
  const create = async (e: Event) => {
    e.preventDefault();
    try {
      const body = { name, role, sources: sources.split(',').map((s) => s.trim()).filter(Boolean) };
      const result = await api<{ token: string; name: string }>('POST', '/api/v1/tokens', body);
      setMade({ name: result.name, token: result.token });
      setName('');
      setSources('');
      setMessage('');
      tokens.reload();
    } catch (err) {
      setMessage(describe(err));
    }
  };
  const revoke = async (token: Token) => {
    try {
      await api('DELETE', `/api/v1/tokens/${encodeURIComponent(token.name)}`);
      setMessage(`Token ${token.name} revoked`);
      tokens.reload();
    } catch (err) {
      setMessage(describe(err));
    }
  };
  return (
    <section class="card" data-testid="tokens">
      <h2>API tokens</h2>
      <p class="muted">For machines: a source posting events, or a script. A token is shown once, when it is made; Tenure keeps only its digest.</p>
      {tokens.error && <p class="error">{tokens.error}</p>}
      <div class="scroll">
        <table>
          <thead>
            <tr><th>Name</th><th>Role</th><th>Sources</th><th>Made by</th><th>Made</th><th /></tr>
          </thead>
          <tbody>
            {(tokens.data ?? []).map((t) => (
              <tr key={t.name}>
                <td>{t.name}</td>
                <td>{t.role}</td>
                <td>{t.sources.join(', ')}</td>
                <td>{t.created_by}</td>
                <td>{when(t.created_ms)}</td>
                <td><button class="danger" onClick={() => revoke(t)}>Revoke</button></td>
              </tr>
            ))}
          </tbody>
        </table>
      </div>
      <form class="filters" onSubmit={create}>
        <input aria-label="token name" placeholder="Name (the actor in the audit)" value={name} onInput={(e) => setName(e.currentTarget.value)} required />
        <select aria-label="token role" value={role} onChange={(e) => setRole(e.currentTarget.value)}>
          {MACHINE_ROLES.map((r) => <option value={r}>{r}</option>)}
        </select>
        {role === 'source' && (
          <input aria-label="token sources" placeholder="Sources (comma-separated)" value={sources} onInput={(e) => setSources(e.currentTarget.value)} />
        )}
        <button type="submit">Make a token</button>
      </form>
      {made && (
        <div class="made" role="status" data-testid="token-made">
          <p>Token <strong>{made.name}</strong>: copy it now, it is not shown again.</p>
          <code>{made.token}</code>
          <button class="secondary" onClick={() => setMade(null)}>I have copied it</button>
        </div>
      )}
      {message && <p role="status">{message}</p>}
    </section>
  );
}
