// A real OpenID provider for sluice's sign-in tests (the npm package oidc-provider), on
// loopback, offline. Configured by environment (see README lines below); prints one JSON line
// `{"ready":true,"issuer":...}` once it listens. Test hooks beside the provider:
//   GET  /test/stats           -> {"token_requests","refresh_requests","end_session_requests"}
//   POST /test/refuse-refresh  -> from then on refresh_token grants answer 400 invalid_grant
// Any login name is accepted with any password (the package's dev interactions); consent is
// given automatically, so a login is one form POST.
import { generateKeyPairSync } from 'node:crypto';
import http from 'node:http';

import Provider from 'oidc-provider';

const env = (name, fallback) => process.env[name] ?? fallback;
const list = (name) => env(name, '').split(',').map((s) => s.trim()).filter(Boolean);
const seconds = (name) => Number.parseInt(env(name, '3600'), 10);

const port = Number.parseInt(env('PORT', '0'), 10);
const clientId = env('CLIENT_ID', 'sluice');
const clientSecret = env('CLIENT_SECRET', 'sluice-test-secret');

function signingKey(type, options, kid, alg) {
  const { privateKey } = generateKeyPairSync(type, options);
  return { ...privateKey.export({ format: 'jwk' }), kid, alg, use: 'sig' };
}

const groupsOf = (id) => (id === 'alice' ? ['admins', 'eng'] : ['users']);
// `bigtoken` carries a claim that makes its ID token larger than 6 KiB (the cookie-chunking test).
const padding = 'p'.repeat(6 * 1024);

const counters = { token_requests: 0, refresh_requests: 0, end_session_requests: 0 };
let refuseRefresh = false;

const server = http.createServer();
server.listen(port, '127.0.0.1', () => {
  const issuer = `http://127.0.0.1:${server.address().port}`;
  const provider = new Provider(issuer, {
    clients: [{
      client_id: clientId,
      client_secret: clientSecret,
      redirect_uris: list('REDIRECT_URIS'),
      post_logout_redirect_uris: list('POST_LOGOUT_REDIRECT_URIS'),
      grant_types: ['authorization_code', 'refresh_token'],
      response_types: ['code'],
      token_endpoint_auth_method: 'client_secret_basic',
    }],
    jwks: {
      keys: [
        signingKey('rsa', { modulusLength: 2048 }, 'rsa1', 'RS256'),
        signingKey('ec', { namedCurve: 'P-256' }, 'ec1', 'ES256'),
      ],
    },
    cookies: { keys: ['sluice-test-only-cookie-key'] },
    pkce: { required: () => false },
    claims: {
      openid: ['sub'],
      email: ['email', 'email_verified'],
      profile: ['name', 'padding'],
      groups: ['groups'],
    },
    scopes: ['openid', 'offline_access', 'email', 'profile', 'groups'],
    features: {
      devInteractions: { enabled: true },
      rpInitiatedLogout: {
        enabled: true,
        // No web fonts: the test machine has no internet.
        logoutSource: async (ctx, form) => {
          ctx.body = `<!DOCTYPE html><html><head><title>Sign out</title></head><body>
            <h1>Sign out of the test provider?</h1>${form}
            <button type="submit" form="op.logoutForm" value="yes" name="logout">Yes</button>
            </body></html>`;
        },
      },
      revocation: { enabled: true },
      introspection: { enabled: true },
    },
    conformIdTokenClaims: false,
    ttl: {
      IdToken: seconds('ID_TOKEN_TTL'),
      AccessToken: seconds('ACCESS_TOKEN_TTL'),
      RefreshToken: 14 * 24 * 3600,
      Grant: 14 * 24 * 3600,
      Session: 14 * 24 * 3600,
      Interaction: 3600,
    },
    // Refresh tokens for every client allowed the grant, whatever `prompt` said: sluice, like
    // Pomerium, asks for offline_access without forcing a consent screen.
    issueRefreshToken: async (ctx, client) => client.grantTypeAllowed('refresh_token'),
    // Consent is implied for the one first-party client.
    loadExistingGrant: async (ctx) => {
      const existing = ctx.oidc.result?.consent?.grantId
        || ctx.oidc.session.grantIdFor(ctx.oidc.client.clientId);
      if (existing) {
        return ctx.oidc.provider.Grant.find(existing);
      }
      const grant = new ctx.oidc.provider.Grant({
        clientId: ctx.oidc.client.clientId,
        accountId: ctx.oidc.session.accountId,
      });
      grant.addOIDCScope('openid email profile groups offline_access');
      grant.addOIDCClaims(['email', 'email_verified', 'name', 'groups', 'padding']);
      await grant.save();
      return grant;
    },
    findAccount: async (ctx, id) => ({
      accountId: id,
      async claims() {
        const claims = {
          sub: id,
          email: `${id}@example.com`,
          email_verified: true,
          name: id,
          groups: groupsOf(id),
        };
        if (id === 'bigtoken') {
          claims.padding = padding;
        }
        return claims;
      },
    }),
  });
  const handle = provider.callback();

  server.on('request', (req, res) => {
    const path = req.url.split('?')[0];
    if (path === '/test/stats') {
      res.setHeader('content-type', 'application/json');
      res.end(JSON.stringify(counters));
      return;
    }
    if (path === '/test/refuse-refresh' && req.method === 'POST') {
      refuseRefresh = true;
      res.end('refresh tokens are refused from now on\n');
      return;
    }
    if (path === '/session/end') {
      counters.end_session_requests += 1;
    }
    if (path !== '/token' || req.method !== 'POST') {
      handle(req, res);
      return;
    }
    // The token endpoint: read the form to count (and maybe refuse) refreshes, then hand the
    // parsed body on (oidc-provider reads `req.body` when the stream is already consumed).
    const chunks = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks);
      const grantType = new URLSearchParams(body.toString()).get('grant_type');
      counters.token_requests += 1;
      if (grantType === 'refresh_token') {
        counters.refresh_requests += 1;
        if (refuseRefresh) {
          res.statusCode = 400;
          res.setHeader('content-type', 'application/json');
          res.end(JSON.stringify({ error: 'invalid_grant', error_description: 'refresh refused by the test' }));
          return;
        }
      }
      req.body = body.toString();
      handle(req, res);
    });
  });

  process.stdout.write(`${JSON.stringify({ ready: true, issuer })}\n`);
});

for (const signal of ['SIGTERM', 'SIGINT']) {
  process.on(signal, () => process.exit(0));
}
