import { databaseFunction } from './databaseFunction.js';

/** Reserves a model call's worst case against the account's limits (SPEC section 21): the output that fits, or that others hold the rest, or the limit reached. */
export default databaseFunction(
  'runyard_reserve_spend',
  `CREATE OR REPLACE FUNCTION public.runyard_reserve_spend(p_account_id uuid, p_run_id uuid, p_input_tokens bigint, p_max_output bigint, p_input_pico bigint, p_output_pico bigint, p_lease_ms integer)
 RETURNS jsonb
 LANGUAGE plpgsql
AS $function$
DECLARE
  lim record;
  period_start date;
  used_tokens bigint;
  used_spend bigint;
  held_tokens bigint;
  held_spend bigint;
  allowed bigint := p_max_output;
  by_tokens bigint;
  by_spend bigint;
BEGIN
  PERFORM pg_advisory_xact_lock(hashtext('runyard:spend:' || p_account_id::text));
  DELETE FROM spend_reservations WHERE run_id = p_run_id;
  SELECT l.period, l.spend_micros, l.tokens INTO lim FROM runyard_effective_limits(p_account_id) l;
  IF lim.period IS NULL OR (lim.spend_micros IS NULL AND lim.tokens IS NULL) THEN
    RETURN jsonb_build_object('reserved', true, 'maxOutputTokens', p_max_output);
  END IF;
  period_start := date_trunc(lim.period, now() AT TIME ZONE 'UTC')::date;
  SELECT COALESCE(sum(u.tokens), 0), COALESCE(sum(u.spend_micros), 0) INTO used_tokens, used_spend
    FROM account_usage u WHERE u.account_id = p_account_id AND u.day >= period_start;
  SELECT COALESCE(sum(r.tokens), 0), COALESCE(sum(r.spend_micros), 0) INTO held_tokens, held_spend
    FROM spend_reservations r WHERE r.account_id = p_account_id AND r.expires_at > now();
  IF lim.tokens IS NOT NULL THEN
    by_tokens := lim.tokens - used_tokens - held_tokens - p_input_tokens;
    allowed := least(allowed, by_tokens);
  END IF;
  IF lim.spend_micros IS NOT NULL AND p_output_pico > 0 THEN
    by_spend := ((lim.spend_micros - used_spend - held_spend) * 1000000 - p_input_tokens * p_input_pico) / p_output_pico;
    allowed := least(allowed, by_spend);
  END IF;
  IF allowed < 1 THEN
    RETURN jsonb_build_object('reserved', false, 'held', held_tokens > 0 OR held_spend > 0, 'reached',
      CASE WHEN by_tokens IS NOT NULL AND by_tokens < 1
        THEN jsonb_build_object('kind', 'tokens', 'limit', lim.tokens, 'consumed', used_tokens)
        ELSE jsonb_build_object('kind', 'spendMicros', 'limit', lim.spend_micros, 'consumed', used_spend) END
      || jsonb_build_object('period', lim.period,
        'resetsAt', to_char((period_start + ('1 ' || lim.period)::interval) AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"')));
  END IF;
  INSERT INTO spend_reservations (id, account_id, run_id, tokens, spend_micros, expires_at)
    VALUES (gen_random_uuid(), p_account_id, p_run_id, p_input_tokens + allowed,
      (p_input_tokens * p_input_pico + allowed * p_output_pico + 999999) / 1000000, now() + make_interval(secs => p_lease_ms / 1000.0));
  RETURN jsonb_build_object('reserved', true, 'maxOutputTokens', allowed);
END
$function$;`,
);
