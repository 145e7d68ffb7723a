import { useState } from 'preact/hooks';
import { api, ApiError, type Whoami } from '../api';

/** A password, or the tenant's OpenID provider. */
export function SignIn({ onSignedIn }: { onSignedIn: (me: Whoami) => void }) {
  const [tenant, setTenant] = useState(localStorage.getItem('tenure.tenant') ?? '');
  const [login, setLogin] = useState('');
  const [password, setPassword] = useState('');
  const [error, setError] = useState('');
  const submit = async (e: Event) => {
    e.preventDefault();
    setError('');
    try {
      localStorage.setItem('tenure.tenant', tenant);
      onSignedIn(await api<Whoami>('POST', '/api/v1/session', { tenant, login, password }));
    } catch (err) {
      setError(err instanceof ApiError ? err.reason : String(err));
    }
  };
  const provider = () => {
    localStorage.setItem('tenure.tenant', tenant);
    // The login, when given, goes to the provider as a hint (it fills in the person's name).
    const hint = login.trim() ? `&login_hint=${encodeURIComponent(login.trim())}` : '';
    location.href = `/api/v1/session/oidc/${encodeURIComponent(tenant)}?return_to=/console/${hint}`;
  };
  return (
    <form class="card sign-in" onSubmit={submit}>
      <h1>Sign in to Tenure</h1>
      <label>
        Tenant <input name="tenant" value={tenant} onInput={(e) => setTenant(e.currentTarget.value)} required />
      </label>
      <label>
        Login <input name="login" value={login} autocomplete="username" onInput={(e) => setLogin(e.currentTarget.value)} />
      </label>
      <label>
        Password{' '}
        <input
          name="password"
          type="password"
          value={password}
          autocomplete="current-password"
          onInput={(e) => setPassword(e.currentTarget.value)}
        />
      </label>
      {error && <p class="error" role="alert">{error}</p>}
      <button type="submit">Sign in</button>
      <button type="button" class="secondary" onClick={provider} disabled={!tenant}>
        Sign in with your company's provider
      </button>
    </form>
  );
}
