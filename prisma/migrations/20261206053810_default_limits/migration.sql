-- CreateTable
CREATE TABLE "deployment_limits" (
    "id" BOOLEAN NOT NULL DEFAULT true,
    "period" TEXT NOT NULL,
    "spend_micros" BIGINT,
    "tokens" BIGINT,

    CONSTRAINT "deployment_limits_pkey" PRIMARY KEY ("id")
);

-- Only one row.
ALTER TABLE "deployment_limits" ADD CONSTRAINT "deployment_limits_one_row" CHECK (id);

-- An account's limits: its own, else the deployment's DEFAULT_LIMITS (no row: no limits).
CREATE FUNCTION runyard_effective_limits(p_account_id uuid) RETURNS TABLE (period text, spend_micros bigint, tokens bigint)
LANGUAGE sql STABLE AS $$
  SELECT a.limit_period, a.limit_spend_micros, a.limit_tokens FROM accounts a WHERE a.id = p_account_id AND a.limit_period IS NOT NULL
  UNION ALL
  SELECT d.period, d.spend_micros, d.tokens FROM deployment_limits d JOIN accounts a ON a.id = p_account_id AND a.limit_period IS NULL
$$;

CREATE OR REPLACE FUNCTION runyard_usage_limit_reached(p_account_id uuid) RETURNS jsonb LANGUAGE plpgsql STABLE AS $$
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
$$;
