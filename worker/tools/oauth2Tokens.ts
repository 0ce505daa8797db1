import { createHash } from 'node:crypto';
import { RunError } from '../../shared/infra/errors.js';

/** Renew a token this long before the expiry its server gave (a call in flight must not carry a dead one). */
const EXPIRY_MARGIN_MS = 30_000;
/** A server that gives no expires_in: its token is kept this long. */
const DEFAULT_LIFETIME_MS = 5 * 60_000;
const TOKEN_TIMEOUT_MS = 10_000;
/** Tokens cached at most (one per client and scope in use; the oldest goes first). */
const MAX_CACHED = 1_000;

export type ClientCredentials = { tokenUrl: string; clientId: string; clientSecret: string; scope?: string };

type Cached = { token: string; expiresAt: number };

/**
 * OAuth2 client-credentials tokens for MCP servers (SPEC section 21; RFC 6749 section 4.4): fetched
 * from the token endpoint with the client's credentials (HTTP Basic, as section 2.3.1 asks), cached
 * per worker until they expire, and dropped when the server they were sent to answers 401 so the
 * next request gets a new one. The endpoint's answer never reaches a run's error, only its status.
 */
export class OAuth2Tokens {
  private readonly cache = new Map<string, Cached>();
  private readonly inFlight = new Map<string, Promise<Cached>>();

  /** The cache key: the client, its scope and its secret (two accounts with one client id but different secrets never share a token). */
  private keyOf(client: ClientCredentials): string {
    return createHash('sha256')
      .update(JSON.stringify([client.tokenUrl, client.clientId, client.clientSecret, client.scope ?? '']))
      .digest('hex');
  }

  async token(client: ClientCredentials, signal: AbortSignal): Promise<string> {
    const key = this.keyOf(client);
    const cached = this.cache.get(key);
    if (cached && cached.expiresAt > Date.now()) return cached.token;
    let pending = this.inFlight.get(key);
    if (!pending) {
      pending = this.fetchToken(client, signal).finally(() => this.inFlight.delete(key));
      this.inFlight.set(key, pending);
    }
    const fresh = await pending;
    if (this.cache.size >= MAX_CACHED) this.cache.delete(this.cache.keys().next().value!);
    this.cache.set(key, fresh);
    return fresh.token;
  }

  /** The server refused `token`: the next request gets a new one. */
  invalidate(client: ClientCredentials, token: string): void {
    const key = this.keyOf(client);
    if (this.cache.get(key)?.token === token) this.cache.delete(key);
  }

  private async fetchToken(client: ClientCredentials, signal: AbortSignal): Promise<Cached> {
    const fail = (why: string) => new RunError('mcp_unavailable', `the OAuth2 token endpoint ${new URL(client.tokenUrl).origin} ${why}`, true);
    const body = new URLSearchParams({ grant_type: 'client_credentials', ...(client.scope ? { scope: client.scope } : {}) });
    const basic = Buffer.from(`${encodeURIComponent(client.clientId)}:${encodeURIComponent(client.clientSecret)}`).toString('base64');
    let response: Response;
    try {
      response = await fetch(client.tokenUrl, {
        method: 'POST',
        headers: { authorization: `Basic ${basic}`, 'content-type': 'application/x-www-form-urlencoded', accept: 'application/json' },
        body,
        redirect: 'manual',
        signal: AbortSignal.any([signal, AbortSignal.timeout(TOKEN_TIMEOUT_MS)]),
      });
    } catch {
      signal.throwIfAborted();
      throw fail('could not be reached');
    }
    if (!response.ok) {
      await response.body?.cancel();
      throw fail(`answered HTTP ${response.status}`);
    }
    const answer = (await response.json().catch(() => null)) as { access_token?: unknown; expires_in?: unknown; token_type?: unknown } | null;
    if (typeof answer?.access_token !== 'string' || !answer.access_token) throw fail('answered without an access_token');
    if (typeof answer.token_type === 'string' && answer.token_type.toLowerCase() !== 'bearer')
      throw fail(`gave a ${answer.token_type} token, not a Bearer one`);
    const lifetime = typeof answer.expires_in === 'number' && answer.expires_in > 0 ? answer.expires_in * 1_000 : DEFAULT_LIFETIME_MS;
    return { token: answer.access_token, expiresAt: Date.now() + Math.max(0, lifetime - EXPIRY_MARGIN_MS) };
  }
}

/** One per worker process: a token serves every run of the account that uses the client. */
export const oauth2Tokens = new OAuth2Tokens();
