// A real OpenID provider for Tenure's sign-in tests: oidc-provider (OpenID Certified) with one
// confidential client that must use PKCE, and test people whose groups a test may change.
// The login and consent screens answer by themselves: the person is the `login_hint`.
//
//   node server.mjs PORT REDIRECT_URI CLIENT_SECRET
//
// Prints "listening" once it serves. POST /test/groups/<account> with a JSON list sets that
// person's groups (for "roles follow the provider's groups at every sign-in").
import http from 'node:http';
import Provider from 'oidc-provider';

const [port, redirectUri, clientSecret] = process.argv.slice(2);
if (!port || !redirectUri || !clientSecret) {
  console.error('usage: node server.mjs PORT REDIRECT_URI CLIENT_SECRET');
  process.exit(2);
}
const issuer = `http://127.0.0.1:${port}`;

const accounts = {
  ada: { email: 'ada@example.com', email_verified: true, name: 'Ada Lovelace', groups: ['tenure-owners'] },
  bob: { email: 'bob@example.com', email_verified: true, name: 'Bob Hire', groups: ['hr-admins', 'staff'] },
  eve: { email: 'eve@example.com', email_verified: true, name: 'Eve Sales', groups: ['sales'] },
  carol: { email: 'carol@example.com', email_verified: true, name: 'Carol Local', groups: ['tenure-owners'] },
  mallory: { email: 'mallory@example.com', email_verified: false, name: 'Mallory', groups: ['tenure-owners'] },
};

const provider = new Provider(issuer, {
  clients: [{
    client_id: 'tenure',
    client_secret: clientSecret,
    redirect_uris: [redirectUri],
    response_types: ['code'],
    grant_types: ['authorization_code'],
    token_endpoint_auth_method: 'client_secret_basic',
  }],
  pkce: { required: () => true },
  scopes: ['openid', 'email', 'profile', 'groups'],
  claims: {
    openid: ['sub'],
    email: ['email', 'email_verified'],
    profile: ['name'],
    groups: ['groups'],
  },
  async findAccount(ctx, sub) {
    const account = accounts[sub];
    if (!account) return undefined;
    return { accountId: sub, claims: async () => ({ sub, ...account }) };
  },
  interactions: { url: (ctx, interaction) => `/interaction/${interaction.uid}` },
  features: { devInteractions: { enabled: false } },
  cookies: { keys: ['tenure-test-idp-cookie-key'] },
});

async function interaction(req, res) {
  const details = await provider.interactionDetails(req, res);
  let result;
  if (details.prompt.name === 'login') {
    const id = details.params.login_hint;
    result = accounts[id]
      ? { login: { accountId: id } }
      : { error: 'access_denied', error_description: 'no such test account' };
  } else {
    const grant = details.grantId
      ? await provider.Grant.find(details.grantId)
      : new provider.Grant({ accountId: details.session.accountId, clientId: details.params.client_id });
    const missing = details.prompt.details;
    if (missing.missingOIDCScope) grant.addOIDCScope(missing.missingOIDCScope.join(' '));
    if (missing.missingOIDCClaims) grant.addOIDCClaims(missing.missingOIDCClaims);
    for (const [indicator, scopes] of Object.entries(missing.missingResourceScopes || {})) {
      grant.addResourceScope(indicator, scopes.join(' '));
    }
    result = { consent: { grantId: await grant.save() } };
  }
  const to = await provider.interactionResult(req, res, result, { mergeWithLastSubmission: false });
  res.writeHead(303, { Location: to });
  res.end();
}

async function setGroups(req, res, id) {
  let body = '';
  for await (const chunk of req) body += chunk;
  if (!accounts[id]) {
    res.writeHead(404);
    res.end();
    return;
  }
  accounts[id].groups = JSON.parse(body);
  res.writeHead(204);
  res.end();
}

const handle = provider.callback();
http.createServer((req, res) => {
  const path = new URL(req.url, issuer).pathname;
  const groups = /^\/test\/groups\/([^/]+)$/.exec(path);
  let work;
  if (req.method === 'POST' && groups) work = setGroups(req, res, groups[1]);
  else if (/^\/interaction\/[^/]+$/.test(path)) work = interaction(req, res);
  else return handle(req, res);
  work.catch((err) => {
    console.error(err);
    res.writeHead(500);
    res.end(String(err));
  });
}).listen(Number(port), '127.0.0.1', () => console.log('listening'));
