import { Router } from 'express';
import type { ApiDeps } from '../deps.js';
import { callerOf } from '../http/http.js';
import { unauthorized } from '../../shared/infra/errors.js';
import { keyFromHeaders } from '../../shared/accounts/keys.js';
import { sameSecret } from '../http/middleware/authenticate.js';

const presentsSecret = (authorization: string | undefined, secret: string) => {
  const sent = keyFromHeaders(authorization, undefined);
  return sent !== undefined && sameSecret(sent, secret);
};

const withTimeout = <T>(promise: Promise<T>, ms: number) =>
  Promise.race([promise, new Promise<never>((_, reject) => setTimeout(() => reject(new Error(`no answer in ${ms} ms`)), ms).unref())]);

async function check(probe: () => Promise<unknown>): Promise<{ ok: boolean; error?: string }> {
  try {
    await withTimeout(probe(), 1_500);
    return { ok: true };
  } catch (err) {
    return { ok: false, error: (err as Error).message };
  }
}

export function healthRoutes(deps: ApiDeps): Router {
  const router = Router();
  router.get('/healthz', (_req, res) => {
    res.json({ status: 'ok' });
  });
  router.get('/readyz', async (_req, res) => {
    const [postgres, redis] = await Promise.all([check(() => deps.db.$queryRaw`SELECT 1`), check(() => deps.redis.ping())]);
    const ready = postgres.ok && redis.ok;
    // Details name the dependency only; connection strings and driver internals stay in the logs.
    if (!ready) deps.logger.warn('not ready', { postgres: postgres.error, redis: redis.error });
    res
      .status(ready ? 200 : 503)
      .json({ status: ready ? 'ready' : 'unavailable', checks: { postgres: postgres.ok ? 'ok' : 'unreachable', redis: redis.ok ? 'ok' : 'unreachable' } });
  });
  router.get('/metrics', async (req, res) => {
    const token = deps.config.METRICS_TOKEN;
    if (token && !presentsSecret(req.get('authorization'), token)) {
      res.setHeader('WWW-Authenticate', 'Bearer realm="runyard metrics"');
      throw unauthorized('GET /metrics needs METRICS_TOKEN as a Bearer token on this server.');
    }
    res.type(deps.metrics.registry.contentType).send(await deps.metrics.registry.metrics());
  });
  return router;
}

export function whoamiRoute(deps: ApiDeps): Router {
  const router = Router();
  router.get('/whoami', async (req, res) => {
    const caller = callerOf(req);
    const account = caller.accountId ? await deps.db.account.findUnique({ where: { id: caller.accountId }, select: { name: true } }) : null;
    res.json({
      accountId: caller.accountId,
      accountName: account?.name ?? null,
      keyId: caller.keyId,
      kind: caller.kind,
      scopes: caller.scopes,
      runId: caller.runId,
    });
  });
  return router;
}
