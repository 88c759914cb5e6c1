// A real OpenID Connect provider (the npm package oidc-provider, OpenID Certified) for
// sislink's sign-in tests. Loopback only; everything it knows comes from the environment:
//
//   OIDC_CLIENTS   JSON list of clients: [{client_id, client_secret, redirect_uris,
//                  post_logout_redirect_uris}]
//   OIDC_ACCOUNTS  JSON object: {"<login>": {"sub", "email", "email_verified", "name",
//                  "groups", "hd"}}; the login is what the sign-in form asks for
//   OIDC_END_SESSION  optional: the end_session_endpoint its discovery document names
//                  instead of its own (a hostile or broken provider's, for tests)
//
// It listens on 127.0.0.1 at a free port and prints one line, `issuer=http://127.0.0.1:PORT`,
// once it is ready. Sign-in is a small form (GET /interaction/UID asks for a login, POST signs
// that account in); consent is given on its behalf (a district's provider does the same for
// an app its administrator registered). Nothing is stored but in memory.
import http from 'node:http';
import crypto from 'node:crypto';
import { generateKeyPair, exportJWK } from 'jose';
import Provider from 'oidc-provider';

const clients = JSON.parse(process.env.OIDC_CLIENTS || '[]');
const accounts = JSON.parse(process.env.OIDC_ACCOUNTS || '{}');

const escapeHtml = (text) => String(text).replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

async function readForm(req) {
  const chunks = [];
  for await (const chunk of req) chunks.push(chunk);
  return new URLSearchParams(Buffer.concat(chunks).toString('utf8'));
}

let provider;

async function interaction(req, res) {
  const details = await provider.interactionDetails(req, res);
  if (req.method === 'GET') {
    const problem = details.lastSubmission?.problem;
    res.setHeader('Content-Type', 'text/html; charset=utf-8');
    res.end(`<!doctype html><title>Test provider sign-in</title>
<h1>Test provider</h1>
${problem ? `<p role="alert">${escapeHtml(problem)}</p>` : ''}
<form method="post" action="/interaction/${escapeHtml(details.uid)}">
<label>Login <input name="login" autofocus></label>
<button type="submit">Sign in at the provider</button>
</form>`);
    return;
  }
  const form = await readForm(req);
  const login = form.get('login') || '';
  if (!accounts[login]) {
    res.statusCode = 400;
    res.setHeader('Content-Type', 'text/plain; charset=utf-8');
    res.end('no such test account');
    return;
  }
  await provider.interactionFinished(
    req,
    res,
    { login: { accountId: login } },
    { mergeWithLastSubmission: false },
  );
}

async function main() {
  const { privateKey } = await generateKeyPair('RS256', { extractable: true });
  const jwk = { ...(await exportJWK(privateKey)), kid: crypto.randomUUID(), use: 'sig', alg: 'RS256' };
  const server = http.createServer((req, res) => {
    if (req.url.startsWith('/interaction/')) {
      interaction(req, res).catch((error) => {
        res.statusCode = 500;
        res.end(String(error));
      });
      return;
    }
    provider.callback()(req, res);
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  // OIDC_ISSUER_PATH: what follows host:port in the issuer ("/" for one that ends in a slash).
  const issuer = `http://127.0.0.1:${server.address().port}${process.env.OIDC_ISSUER_PATH || ''}`;
  provider = new Provider(issuer, {
    clients: clients.map((c) => ({
      grant_types: ['authorization_code'],
      response_types: ['code'],
      token_endpoint_auth_method: 'client_secret_basic',
      ...c,
    })),
    jwks: { keys: [jwk] },
    cookies: { keys: [crypto.randomBytes(32).toString('hex')] },
    claims: {
      openid: ['sub'],
      email: ['email', 'email_verified'],
      profile: ['name', 'hd', 'groups'],
    },
    // The claims asked for by scope go in the ID token itself, as Google's and Entra's do.
    conformIdTokenClaims: false,
    pkce: { required: () => true },
    features: {
      devInteractions: { enabled: false },
      rpInitiatedLogout: { enabled: !process.env.OIDC_END_SESSION },
    },
    discovery: process.env.OIDC_END_SESSION
      ? { end_session_endpoint: process.env.OIDC_END_SESSION }
      : {},
    ttl: {
      // A client named "*-short-lived" gets ID tokens that expire after one second.
      IdToken: (_ctx, _token, client) => (client.clientId.endsWith('-short-lived') ? 1 : 3600),
      AuthorizationCode: 60,
      AccessToken: 600,
      Interaction: 600,
      Session: 3600,
      Grant: 3600,
    },
    interactions: { url: (_ctx, details) => `/interaction/${details.uid}` },
    async findAccount(_ctx, id) {
      const account = accounts[id];
      if (!account) return undefined;
      return {
        accountId: id,
        async claims() {
          return { sub: account.sub || id, ...account };
        },
      };
    },
    async loadExistingGrant(ctx) {
      const grantId = ctx.oidc.result?.consent?.grantId
        || ctx.oidc.session.grantIdFor(ctx.oidc.client.clientId);
      if (grantId) {
        const found = await ctx.oidc.provider.Grant.find(grantId);
        if (found) return found;
      }
      const grant = new ctx.oidc.provider.Grant({
        clientId: ctx.oidc.client.clientId,
        accountId: ctx.oidc.session.accountId,
      });
      grant.addOIDCScope('openid email profile');
      await grant.save();
      return grant;
    },
  });
  provider.on('server_error', (_ctx, error) => process.stderr.write(`server_error ${error}\n`));
  process.stdout.write(`issuer=${issuer}\n`);
}

main().catch((error) => {
  process.stderr.write(`${error.stack || error}\n`);
  process.exit(1);
});
