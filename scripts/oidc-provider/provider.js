// An OpenID Connect provider for Berth's tests, built on `oidc-provider` (a certified OpenID
// implementation). Listens on 127.0.0.1 only.
//
//   node provider.js PORT [CLIENT_ID CLIENT_SECRET REDIRECT_URI[,REDIRECT_URI…]]
//
// or the same from OIDC_CLIENT_ID, OIDC_CLIENT_SECRET, OIDC_REDIRECT_URIS (comma-separated) and
// OIDC_POST_LOGOUT_REDIRECT_URIS. The issuer is http://127.0.0.1:PORT.
//
// - One confidential client (client_secret_basic or _post), authorization code with PKCE (S256,
//   required), refresh tokens issued whenever the client may use them (`issueRefreshToken`).
// - Scopes openid, profile, email, groups, offline_access; the `groups` scope/claim carries the
//   account's groups; claims are also put in the ID token (`conformIdTokenClaims: false`).
// - Static accounts with passwords and groups (ACCOUNTS below).
// - The login interaction is a plain HTML form (POST username + password, no JavaScript), so a
//   browser and a cookie-jar HTTP client can both complete it; consent is given automatically.
// - Test-only hooks: `POST /test/revoke?user=NAME` destroys the user's grants (refresh fails
//   with invalid_grant afterwards) and provider sessions; `GET /test/health` answers 200.
// - RP-initiated logout (`end_session_endpoint`) is on; the logout confirmation is skipped.
import http from 'node:http';
import crypto from 'node:crypto';
import Provider from 'oidc-provider';

const port = Number(process.argv[2] || process.env.OIDC_PORT);
if (!port) {
  console.error('usage: node provider.js PORT [CLIENT_ID CLIENT_SECRET REDIRECT_URIS]');
  process.exit(2);
}
const clientId = process.argv[3] || process.env.OIDC_CLIENT_ID || 'berth';
const clientSecret = process.argv[4] || process.env.OIDC_CLIENT_SECRET || 'berth-test-client-secret';
const redirectUris = (process.argv[5] || process.env.OIDC_REDIRECT_URIS || 'http://127.0.0.1/c/oidc/callback')
  .split(',').filter(Boolean);
const postLogout = (process.env.OIDC_POST_LOGOUT_REDIRECT_URIS
  || redirectUris.flatMap((u) => [new URL('/', u).href, new URL('/account/sign-in', u).href]).join(','))
  .split(',').filter(Boolean);
const issuer = `http://127.0.0.1:${port}`;

// username → account. `sub` is stable and differs from the username on purpose.
export const ACCOUNTS = {
  olivia: { sub: 'sub-olivia', password: 'Olivia-pass-1', name: 'Olivia Ortiz', email: 'olivia@example.test', groups: ['developers'] },
  oscar: { sub: 'sub-oscar', password: 'Oscar-pass-1', name: 'Oscar Olsen', email: 'oscar@example.test', groups: ['admins', 'developers'] },
  otto: { sub: 'sub-otto', password: 'Otto-pass-1', name: 'Otto Oja', email: 'otto@example.test', groups: [] },
  // A name that is not a valid Berth username (onboarding must ask for one).
  'p@tty': { sub: 'sub-patty', password: 'Patty-pass-1', name: 'Patty P', email: 'patty@example.test', groups: ['developers'] },
};
const bySub = Object.fromEntries(Object.entries(ACCOUNTS).map(([u, a]) => [a.sub, { username: u, ...a }]));

const { privateKey } = crypto.generateKeyPairSync('rsa', { modulusLength: 2048 });
const jwk = { ...privateKey.export({ format: 'jwk' }), kid: crypto.randomBytes(8).toString('hex'), use: 'sig', alg: 'RS256' };

const configuration = {
  clients: [{
    client_id: clientId,
    client_secret: clientSecret,
    redirect_uris: redirectUris,
    post_logout_redirect_uris: postLogout,
    grant_types: ['authorization_code', 'refresh_token'],
    response_types: ['code'],
    token_endpoint_auth_method: 'client_secret_basic',
    // native: a redirect URI on a loopback address matches on any port (RFC 8252 §7.3), so
    // one registration serves servers started on free ports.
    application_type: 'native',
  }],
  jwks: { keys: [jwk] },
  cookies: { keys: [crypto.randomBytes(32).toString('hex')] },
  scopes: ['openid', 'offline_access', 'profile', 'email', 'groups'],
  claims: {
    openid: ['sub'],
    profile: ['name', 'preferred_username'],
    email: ['email', 'email_verified'],
    groups: ['groups'],
  },
  conformIdTokenClaims: false,
  pkce: { required: () => true },
  features: {
    devInteractions: { enabled: false },
    revocation: { enabled: true },
    rpInitiatedLogout: {
      enabled: true,
      // No confirmation page: submit the logout form at once, ending the provider's session
      // (`logout=yes`), not only the client's part of it.
      logoutSource: async (ctx, form) => {
        const yes = form.replace('</form>', '<input type="hidden" name="logout" value="yes"/></form>');
        ctx.body = `<!DOCTYPE html><html><body>${yes}<script>document.forms[0].submit()</script>`
          + `<noscript><button form="op.logoutForm" name="logout" value="yes">Sign out</button></noscript></body></html>`;
      },
    },
  },
  ttl: {
    AccessToken: Number(process.env.OIDC_ACCESS_TOKEN_TTL || 300),
    IdToken: 300,
    RefreshToken: 24 * 3600,
    Grant: 24 * 3600,
    Session: 24 * 3600,
    Interaction: 600,
  },
  issueRefreshToken: async (ctx, client) => client.grantTypeAllowed('refresh_token'),
  expiresWithSession: async () => false,
  interactions: { url: (ctx, interaction) => `/interaction/${interaction.uid}` },
  findAccount: async (ctx, sub) => {
    const a = bySub[sub];
    if (!a) return undefined;
    return {
      accountId: sub,
      claims: async () => ({
        sub,
        name: a.name,
        preferred_username: a.username,
        email: a.email,
        email_verified: true,
        groups: a.groups,
      }),
    };
  },
};

const provider = new Provider(issuer, configuration);
provider.proxy = false;

// accountId → grant ids created at login (for /test/revoke).
const grants = new Map();

const esc = (s) => String(s).replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
const page = (uid, error) => `<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>Test provider sign-in</title></head>
<body><h1>Sign in to the test provider</h1>${error ? `<p role="alert" id="error">${esc(error)}</p>` : ''}
<form method="post" action="/interaction/${esc(uid)}/login">
<label>Username <input name="username" id="username" autocomplete="username"></label>
<label>Password <input name="password" id="password" type="password" autocomplete="current-password"></label>
<button type="submit" id="submit">Sign in</button></form></body></html>`;

async function readForm(req) {
  const chunks = [];
  let size = 0;
  for await (const c of req) {
    size += c.length;
    if (size > 16384) throw new Error('form too large');
    chunks.push(c);
  }
  return new URLSearchParams(Buffer.concat(chunks).toString('utf8'));
}

function send(res, status, body, type = 'text/html; charset=utf-8') {
  res.writeHead(status, { 'content-type': type, 'cache-control': 'no-store' });
  res.end(body);
}

async function interaction(req, res, url) {
  const m = url.pathname.match(/^\/interaction\/([^/]+)(\/login)?$/);
  if (!m) return send(res, 404, 'not found');
  const details = await provider.interactionDetails(req, res);
  if (details.uid !== m[1]) return send(res, 400, 'interaction mismatch');
  if (req.method === 'GET') {
    if (details.prompt.name === 'login') return send(res, 200, page(details.uid));
    // Consent only: the user is known (a provider session exists); consent automatically.
    return finish(req, res, details, details.session.accountId);
  }
  if (req.method === 'POST' && m[2]) {
    const form = await readForm(req);
    const a = ACCOUNTS[form.get('username') || ''];
    const given = Buffer.from(form.get('password') || '');
    const ok = a && given.length === Buffer.byteLength(a.password)
      && crypto.timingSafeEqual(given, Buffer.from(a.password));
    if (!ok) return send(res, 200, page(details.uid, 'Invalid username or password'));
    return finish(req, res, details, a.sub);
  }
  return send(res, 405, 'method not allowed');
}

// Logs the account in and consents to everything the client asked for.
async function finish(req, res, details, accountId) {
  const { params } = details;
  let grant;
  if (details.grantId) grant = await provider.Grant.find(details.grantId);
  if (!grant) grant = new provider.Grant({ accountId, clientId: params.client_id });
  if (params.scope) grant.addOIDCScope(params.scope);
  const missing = details.prompt.details || {};
  if (missing.missingOIDCClaims) grant.addOIDCClaims(missing.missingOIDCClaims);
  if (missing.missingResourceScopes) {
    for (const [indicator, scopes] of Object.entries(missing.missingResourceScopes)) {
      grant.addResourceScope(indicator, scopes.join(' '));
    }
  }
  const grantId = await grant.save();
  if (!grants.has(accountId)) grants.set(accountId, new Set());
  grants.get(accountId).add(grantId);
  await provider.interactionFinished(req, res, { login: { accountId }, consent: { grantId } },
    { mergeWithLastSubmission: false });
}

async function revoke(res, url) {
  const name = url.searchParams.get('user') || '';
  const a = ACCOUNTS[name];
  if (!a) return send(res, 404, `no account ${name}`, 'text/plain');
  let n = 0;
  for (const id of grants.get(a.sub) || []) {
    const g = await provider.Grant.find(id);
    if (g) { await g.destroy(); n += 1; }
    await provider.RefreshToken.adapter.revokeByGrantId(id);
    await provider.AccessToken.adapter.revokeByGrantId(id);
  }
  grants.delete(a.sub);
  return send(res, 200, JSON.stringify({ revoked: n }), 'application/json');
}

const callback = provider.callback();
const server = http.createServer(async (req, res) => {
  const url = new URL(req.url, issuer);
  try {
    if (url.pathname.startsWith('/interaction/')) return await interaction(req, res, url);
    if (url.pathname === '/test/revoke' && req.method === 'POST') return await revoke(res, url);
    if (url.pathname === '/test/health') return send(res, 200, 'ok', 'text/plain');
    return callback(req, res);
  } catch (e) {
    console.error(e);
    if (!res.headersSent) send(res, 400, `error: ${esc(e.message)}`);
    else res.end();
  }
});
server.listen(port, '127.0.0.1', () => {
  console.log(`oidc provider ${issuer} client ${clientId} redirect ${redirectUris.join(',')}`);
});
