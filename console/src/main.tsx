// The console: who is signed in decides what is shown; each page reads and changes Tenure
// through its API, so the console can do nothing a person's roles do not allow.
import { render } from 'preact';
import { useEffect, useState } from 'preact/hooks';
import { api, type Whoami } from './api';
import { SignIn } from './pages/SignIn';
import { Operations } from './pages/Operations';
import { Audit } from './pages/Audit';
import { People } from './pages/People';
import { Dashboard } from './pages/Dashboard';
import { Rules } from './pages/Rules';
import { Plugins } from './pages/Plugins';
import { Access } from './pages/Access';

const pages = {
  operations: { title: 'Operations', view: Operations },
  rules: { title: 'Rules', view: Rules },
  people: { title: 'People', view: People },
  audit: { title: 'Audit', view: Audit },
  dashboard: { title: 'Dashboard', view: Dashboard },
  plugins: { title: 'Plugins', view: Plugins },
  access: { title: 'Access', view: Access },
} as const;
type PageName = keyof typeof pages;

/** Pages whose every part needs a role; the others show each person what their roles read. */
const NEEDS: Partial<Record<PageName, string[]>> = { access: ['owner', 'it-admin'] };
const shown = (name: PageName, me: Whoami) => !NEEDS[name] || NEEDS[name].some((r) => me.roles.includes(r));

function currentPage(): PageName {
  const name = location.hash.replace(/^#\/?/, '').split('?')[0];
  return name in pages ? (name as PageName) : 'operations';
}

function App() {
  const [me, setMe] = useState<Whoami | null | undefined>(undefined);
  const [page, setPage] = useState<PageName>(currentPage());
  useEffect(() => {
    api<Whoami>('GET', '/api/v1/session')
      .then(setMe)
      .catch(() => setMe(null));
    const onHash = () => setPage(currentPage());
    window.addEventListener('hashchange', onHash);
    return () => window.removeEventListener('hashchange', onHash);
  }, []);
  if (me === undefined) return <p class="muted">Loading…</p>;
  if (me === null) return <SignIn onSignedIn={setMe} />;
  const signOut = async () => {
    await api('DELETE', '/api/v1/session').catch(() => undefined);
    setMe(null);
  };
  const View = pages[page].view;
  return (
    <div class="shell">
      <header>
        <strong>Tenure</strong>
        <nav>
          {(Object.keys(pages) as PageName[]).filter((name) => shown(name, me)).map((name) => (
            <a href={`#/${name}`} class={name === page ? 'active' : ''}>
              {pages[name].title}
            </a>
          ))}
        </nav>
        <span class="who" data-testid="who">
          {me.name} ({me.roles.join(', ')}) · {me.tenant}
        </span>
        <button onClick={signOut}>Sign out</button>
      </header>
      <main>
        <View me={me} />
      </main>
    </div>
  );
}

const root = document.getElementById('app');
if (root) render(<App />, root);
