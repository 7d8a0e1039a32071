// A real OpenID Connect provider for the single sign-on tests (oidc-provider, in memory):
// authorization code flow with PKCE (S256 only), refresh tokens, RS256 ID tokens from a key
// made at start-up, and no login or consent page — the account is the `login_hint` of the
// authorization request (default `alice`), so a test drives the whole flow over HTTP by
// following redirects with a cookie jar. State lives in memory: a restart forgets every
// session, code and refresh token (that is how the tests make refreshes fail).
//
//   node tests/js/oidc-op.mjs --port PORT --redirect URI [--redirect URI …]
//        [--id-token-ttl SECONDS] [--https CERT.pem KEY.pem] [--conform]
//
// --https serves TLS with that certificate (issuer https://127.0.0.1:PORT); --conform puts
// the profile and e-mail claims only in /me, not in the ID token (conformIdTokenClaims).
// Prints `ready <issuer>` once listening; exits on SIGTERM.
//
// Clients: `outpost` (confidential, secret `outpost-secret`) and `outpost-public` (public,
// no secret). Accounts: `<id>` has email `<id>@example.test` and upn `<id>@corp.example.test`.
import { generateKeyPairSync } from 'node:crypto';
import { readFileSync } from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import Provider from 'oidc-provider';

function parse(argv) {
  const o = { redirects: [], idTokenTtl: 3600, https: null, conform: false, port: null };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--port') o.port = Number(argv[++i]);
    else if (a === '--redirect') o.redirects.push(argv[++i]);
    else if (a === '--id-token-ttl') o.idTokenTtl = Number(argv[++i]);
    else if (a === '--https') o.https = { cert: argv[++i], key: argv[++i] };
    else if (a === '--conform') o.conform = true;
    else throw new Error(`unknown argument ${a}`);
  }
  if (!o.port || o.redirects.length === 0) throw new Error('--port and --redirect are required');
  return o;
}

const opts = parse(process.argv.slice(2));
const issuer = `${opts.https ? 'https' : 'http'}://127.0.0.1:${opts.port}`;
const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
const common = {
  redirect_uris: opts.redirects,
  grant_types: ['authorization_code', 'refresh_token'],
  response_types: ['code'],
};
const provider = new Provider(issuer, {
  clients: [
    { client_id: 'outpost', client_secret: 'outpost-secret', ...common },
    { client_id: 'outpost-public', token_endpoint_auth_method: 'none', ...common },
  ],
  jwks: { keys: [{ ...privateKey.export({ format: 'jwk' }), kid: 'k1', alg: 'RS256', use: 'sig' }] },
  claims: {
    openid: ['sub'],
    email: ['email', 'email_verified'],
    profile: ['name', 'given_name', 'family_name', 'preferred_username', 'upn'],
  },
  scopes: ['openid', 'email', 'profile', 'offline_access'],
  findAccount: (ctx, id) => ({
    accountId: id,
    claims: () => ({
      sub: id,
      email: `${id}@example.test`,
      email_verified: true,
      name: `${id} Example`,
      given_name: id,
      family_name: 'Example',
      preferred_username: id,
      upn: `${id}@corp.example.test`,
    }),
  }),
  features: { devInteractions: { enabled: false } },
  conformIdTokenClaims: opts.conform,
  pkce: { required: () => true },
  issueRefreshToken: (ctx, client) => client.grantTypeAllowed('refresh_token'),
  cookies: { keys: ['test-only'] },
  ttl: {
    AccessToken: 3600,
    AuthorizationCode: 60,
    IdToken: opts.idTokenTtl,
    RefreshToken: 86400,
    Interaction: 600,
    Session: 86400,
    Grant: 86400,
  },
});

// Automatic login (as the login_hint) and consent to everything asked.
provider.use(async (ctx, next) => {
  if (!/^\/interaction\/[^/]+$/.test(ctx.path)) return next();
  const d = await provider.interactionDetails(ctx.req, ctx.res);
  const hint = d.params.login_hint?.split('@')[0];
  const accountId = d.session?.accountId ?? hint ?? 'alice';
  let result = { login: { accountId } };
  if (d.prompt.name !== 'login') {
    const g = d.grantId
      ? await provider.Grant.find(d.grantId)
      : new provider.Grant({ accountId, clientId: d.params.client_id });
    if (d.prompt.details.missingOIDCScope) g.addOIDCScope(d.prompt.details.missingOIDCScope.join(' '));
    if (d.prompt.details.missingOIDCClaims) g.addOIDCClaims(d.prompt.details.missingOIDCClaims);
    result = { consent: { grantId: await g.save() } };
  }
  ctx.redirect(await provider.interactionResult(ctx.req, ctx.res, result));
});

const server = opts.https
  ? https.createServer(
      { cert: readFileSync(opts.https.cert), key: readFileSync(opts.https.key) },
      provider.callback(),
    )
  : http.createServer(provider.callback());
server.listen(opts.port, '127.0.0.1', () => console.log(`ready ${issuer}`));
process.on('SIGTERM', () => {
  server.close();
  process.exit(0);
});
