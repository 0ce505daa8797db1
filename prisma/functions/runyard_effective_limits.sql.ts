import { databaseFunction } from './databaseFunction.js';

/** An account's spend limits: its own, else DEFAULT_LIMITS (deployment_limits). Every limit check reads this one definition. */
export default databaseFunction(
  'runyard_effective_limits',
  `CREATE OR REPLACE FUNCTION public.runyard_effective_limits(p_account_id uuid)
 RETURNS TABLE(period text, spend_micros bigint, tokens bigint)
 LANGUAGE sql
 STABLE
AS $function$
  SELECT a.limit_period, a.limit_spend_micros, a.limit_tokens FROM accounts a WHERE a.id = p_account_id AND a.limit_period IS NOT NULL
  UNION ALL
  SELECT d.period, d.spend_micros, d.tokens FROM deployment_limits d JOIN accounts a ON a.id = p_account_id AND a.limit_period IS NULL
$function$;`,
);
