// A real OpenID provider for the browser and integration tests (npm oidc-provider, dev
// interactions: any login name, then a consent button). The login name is `org:role`, e.g.
// `fier:caseworker`; its id_token carries { sub, org, roles: [role], name }.
// It also mints client-credentials access tokens (JWT, RFC 9068) for the machine clients of
// MACHINE_CLIENTS below, with `client_id`, `org`, `scope` and `aud` = --api-audience.
// Usage: node web/tests/oidc-provider.mjs --port P --redirect-uri URI --post-logout-redirect-uri URI [--api-audience A]
// Prints exactly one line to stdout, `OIDC_READY <issuer>`, once it listens.
import { parseArgs } from 'node:util';
import { generateKeyPairSync } from 'node:crypto';
import Provider from 'oidc-provider';

const { values: opt } = parseArgs({
  options: {
    port: { type: 'string' },
    'redirect-uri': { type: 'string' },
    'post-logout-redirect-uri': { type: 'string' },
    'api-audience': { type: 'string', default: 'nrm' },
  },
});
if (!opt.port || !opt['redirect-uri'] || !opt['post-logout-redirect-uri']) {
  console.error('usage: oidc-provider.mjs --port P --redirect-uri URI --post-logout-redirect-uri URI');
  process.exit(2);
}
// oidc-provider prints its notices with console.info; stdout is kept for the ready line.
console.info = (...args) => console.error(...args);

const issuer = `http://127.0.0.1:${opt.port}`;
// A fresh signing key per run (no development-key warning, nothing kept on disk).
const signingKey = { ...generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey.export({ format: 'jwk' }), kid: 'test', use: 'sig', alg: 'RS256' };

// The systems of organisations: the scopes each may ask for, and the organisation its
// tokens name. The secrets are the client id followed by `-test-secret`.
const API_SCOPES = 'nrm:case.open nrm:consent.record nrm:referral.read nrm:capacity.report';
const MACHINE_CLIENTS = {
  'fier-chat-platform': { org: 'fier', scope: API_SCOPES },
  'csg-case-system': { org: 'csg', scope: 'nrm:referral.read nrm:capacity.report' },
};

const provider = new Provider(issuer, {
  clients: [...Object.entries(MACHINE_CLIENTS).map(([id, { scope }]) => ({
    client_id: id,
    client_secret: `${id}-test-secret`,
    token_endpoint_auth_method: 'client_secret_basic',
    grant_types: ['client_credentials'],
    response_types: [],
    redirect_uris: [],
    scope,
  })), {
    client_id: 'nrm-web',
    client_secret: 'nrm-web-test-secret-0123456789abcdef',
    token_endpoint_auth_method: 'client_secret_basic',
    grant_types: ['authorization_code'],
    response_types: ['code'],
    redirect_uris: [opt['redirect-uri']],
    post_logout_redirect_uris: [opt['post-logout-redirect-uri']],
  }],
  jwks: { keys: [signingKey] },
  cookies: { keys: ['nrm-test-cookie-key-0123456789abcdef'] },
  pkce: { required: () => true },
  conformIdTokenClaims: false, // the scopes' claims go into the id_token itself
  scopes: ['openid', 'profile', 'nrm', ...API_SCOPES.split(' ')],
  claims: { openid: ['sub'], profile: ['name'], nrm: ['org', 'roles'] },
  features: {
    devInteractions: { enabled: true },
    rpInitiatedLogout: { enabled: true },
    clientCredentials: { enabled: true },
    // The API is the one resource server: its tokens are JWTs for nrm's audience.
    resourceIndicators: {
      enabled: true,
      defaultResource: () => 'urn:nrm:api',
      useGrantedResource: () => true,
      getResourceServerInfo: () => ({
        scope: API_SCOPES,
        audience: opt['api-audience'],
        accessTokenFormat: 'jwt',
        accessTokenTTL: 600,
        jwt: { sign: { alg: 'RS256' } },
      }),
    },
  },
  async extraTokenClaims(ctx, token) {
    const machine = MACHINE_CLIENTS[token.clientId];
    return token.kind === 'ClientCredentials' && machine ? { org: machine.org } : undefined;
  },
  async findAccount(ctx, id) {
    const [org, role] = String(id).split(':');
    return { accountId: id, claims: async () => ({ sub: id, org, roles: role ? [role] : [], name: `Test ${id}` }) };
  },
});

provider.listen(Number(opt.port), '127.0.0.1', () => console.log(`OIDC_READY ${issuer}`));
// Open keep-alive connections would hold server.close() up: a test provider just stops.
for (const signal of ['SIGTERM', 'SIGINT']) process.on(signal, () => process.exit(0));
