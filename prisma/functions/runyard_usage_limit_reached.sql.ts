import { databaseFunction } from './databaseFunction.js';

/** The spend limit an account has reached this period, or null: the one place that decides it (SPEC section 14). */
export default databaseFunction(
  'runyard_usage_limit_reached',
  `CREATE OR REPLACE FUNCTION public.runyard_usage_limit_reached(p_account_id uuid)
 RETURNS jsonb
 LANGUAGE plpgsql
 STABLE
AS $function$
DECLARE
  acct record;
  period_start date;
  used_tokens bigint;
  used_spend bigint;
BEGIN
  SELECT l.period AS limit_period, l.spend_micros AS limit_spend_micros, l.tokens AS limit_tokens INTO acct FROM runyard_effective_limits(p_account_id) l;
  IF acct.limit_period IS NULL OR (acct.limit_spend_micros IS NULL AND acct.limit_tokens IS NULL) THEN
    RETURN NULL;
  END IF;
  period_start := date_trunc(acct.limit_period, now() AT TIME ZONE 'UTC')::date;
  SELECT COALESCE(sum(u.tokens), 0), COALESCE(sum(u.spend_micros), 0) INTO used_tokens, used_spend
    FROM account_usage u WHERE u.account_id = p_account_id AND u.day >= period_start;
  IF acct.limit_tokens IS NOT NULL AND used_tokens >= acct.limit_tokens THEN
    RETURN jsonb_build_object('kind', 'tokens', 'limit', acct.limit_tokens, 'consumed', used_tokens, 'period', acct.limit_period,
      'resetsAt', to_char((period_start + ('1 ' || acct.limit_period)::interval) AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"'));
  END IF;
  IF acct.limit_spend_micros IS NOT NULL AND used_spend >= acct.limit_spend_micros THEN
    RETURN jsonb_build_object('kind', 'spendMicros', 'limit', acct.limit_spend_micros, 'consumed', used_spend, 'period', acct.limit_period,
      'resetsAt', to_char((period_start + ('1 ' || acct.limit_period)::interval) AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"'));
  END IF;
  RETURN NULL;
END
$function$;`,
);
