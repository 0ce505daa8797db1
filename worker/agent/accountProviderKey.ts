import { openSecret } from '../../shared/accounts/secrets.js';
import type { LoopContext } from './loopContext.js';
import type { AccountProviderKey } from '../providers/index.js';

/** The account's own key for the run's provider (SPEC section 21), opened once per attempt; undefined: the deployment's. */
export function accountProviderKey(ctx: Pick<LoopContext, 'run' | 'deps' | 'openedProviderKey'>): AccountProviderKey | undefined {
  const sealed = ctx.run.providerKey;
  if (!sealed) return undefined;
  ctx.openedProviderKey ??= { apiKey: openSecret(sealed.sealed, ctx.deps.config.RUNYARD_SECRET), baseUrl: sealed.baseUrl };
  return ctx.openedProviderKey;
}
