import { Command, CommanderError, Option } from 'commander';
import cliProgress from 'cli-progress';
import { buildApiDeps, type ApiRuntime } from '../api/buildDeps.js';
import { cancelRun } from '../api/runs/cancelRun.js';
import type { Caller } from '../api/http/http.js';
import { getRunForCaller, isRunId } from '../api/runs/readRuns.js';
import { getChat } from '../api/chats/readChats.js';
import { deleteChat } from '../api/chats/deleteChat.js';
import { pruneExpiredChats } from '../shared/runs/retention.js';
import { listQueuedMessages } from '../api/chats/queuedMessages.js';
import { listRunsForOperator, replayRuns } from '../api/admin/operatorRuns.js';
import { createAccountKey, listAccountKeys, revokeAccountKey } from '../shared/accounts/apiKeys.js';
import { ConfigError, loadConfig, type Config } from '../shared/infra/config.js';
import { AppError, isDatabaseUnreachable } from '../shared/infra/errors.js';
import { RUN_STATUSES, type RunStatus } from '../shared/runs/lifecycle.js';
import { SCOPES, type Scope } from '../shared/accounts/keys.js';
import { createLogger } from '../shared/infra/logger.js';
import { catalogueViews, refreshCatalogue, setCatalogueEntry, unsetCatalogueEntry } from '../shared/agent/modelCatalogue.js';
import { contextWindows } from '../shared/agent/contextWindows.js';
import { accountSecretNames, SECRET_NAME, setAccountSecret, unsetAccountSecret } from '../shared/accounts/accountSecrets.js';
import { KEYED_PROVIDERS, providerKeysOf, setProviderKey, unsetProviderKey, type KeyedProvider } from '../shared/accounts/providerKeys.js';
import { parseModelId } from '../shared/agent/models.js';
import { migrateOrExplain } from './startupChecks.js';
import { accountToolSecrets, rotateToolSecret } from '../shared/accounts/toolSecrets.js';
import { findAccount, updateAccountSettings } from '../shared/accounts/accountSettings.js';
import { eraseAccount } from '../api/admin/eraseAccount.js';
import { accountUsage, setAccountLimits } from '../shared/accounts/usageLimits.js';
import { LIMIT_PERIODS, type LimitPeriod } from '../shared/accounts/defaultLimits.js';
import { redeliverFailedWebhookEvents, redeliverWebhookEvent, webhookEventsOfRun } from '../shared/webhooks/deliveryLog.js';
import type { StepToolCall } from '../worker/attempt/stepStore.js';
import { parseDuration, print, table, UsageError, type Output } from './cliSupport.js';

/**
 * The operator CLI: `npm run cli -- <command>`. Every command takes --json; exit codes are
 * 0 ok, 1 failure, 2 usage (or auth) error.
 */
const OPERATOR: Caller = { accountId: null, keyId: null, kind: 'admin_token', scopes: ['admin', 'runs:read', 'runs:write'], runId: null, expiresAt: null };

let runtime: ApiRuntime | undefined;
function connect(config: Config) {
  runtime ??= buildApiDeps(config, createLogger('cli', 'silent'));
  return runtime.deps;
}

// Commander's own error text is held until we know what to say: a misspelled option must not be
// reported as a missing required one.
let commanderErrors = '';
const program = new Command('runyard')
  .description('Operate a runyard deployment')
  .exitOverride()
  .showHelpAfterError()
  .configureOutput({ writeErr: (text) => void (commanderErrors += text) });
const config = () => loadConfig();
const outputOf = (cmd: Command): Output => ({ json: Boolean(cmd.optsWithGlobals().json) });
program.option('--json', 'machine-readable output');

const keys = program.command('keys').description('account API keys');
keys
  .command('create')
  .description('create an account key (the account is created if new); the key is shown once')
  .requiredOption('--account <name>', 'account name (created if new)')
  .addOption(new Option('--scopes <scopes...>', 'scopes').choices([...SCOPES]).default(['runs:write', 'runs:read']))
  .option('--name <label>', 'a label for the key')
  .action(async (opts: { account: string; scopes: Scope[]; name?: string }, cmd: Command) => {
    const created = await createAccountKey(connect(config()).db, opts.account, opts.scopes, opts.name);
    print(outputOf(cmd), { key: created.rawKey, id: created.id, accountId: created.accountId, account: created.accountName, scopes: created.scopes }, () =>
      [
        `${created.rawKey}`,
        '',
        `key id ${created.id} for account "${created.accountName}" (${created.accountId}), scopes: ${created.scopes.join(' ')}`,
        'The key is shown only now; store it safely.',
      ].join('\n'),
    );
  });
keys
  .command('list')
  .description('list account keys (never the keys themselves)')
  .option('--account <name>', 'only this account')
  .action(async (opts: { account?: string }, cmd: Command) => {
    const rows = await listAccountKeys(connect(config()).db, opts.account);
    print(outputOf(cmd), rows, () =>
      table(
        rows.map((row) => ({ ...row, scopes: row.scopes.join(' ') })),
        ['id', 'account', 'prefix', 'scopes', 'createdAt', 'lastUsedAt', 'revokedAt'],
      ),
    );
  });
keys
  .command('revoke <id>')
  .description('revoke an account key (its stream tokens die with it)')
  .action(async (id: string, _opts: unknown, cmd: Command) => {
    if (!/^[0-9a-f-]{36}$/i.test(id)) throw new UsageError(`"${id}" is not a key id`);
    if (!(await revokeAccountKey(connect(config()).db, id))) throw new AppError('key_not_found', 404, `No account key ${id}.`, 'List keys with `keys list`.');
    print(outputOf(cmd), { id, revoked: true }, () => `revoked ${id}`);
  });

const accounts = program.command('accounts').description('accounts');
accounts
  .command('tool-secret')
  .description("show the secret that signs the account's server-tool calls (Standard Webhooks whsec_…); --rotate replaces it")
  .requiredOption('--account <name>', 'account name')
  .option('--rotate', 'make a new secret; the old one keeps signing beside it for TOOL_SECRET_GRACE_MS')
  .action(async (opts: { account: string; rotate?: boolean }, cmd: Command) => {
    const cfg = config();
    const deps = connect(cfg);
    const account = await findAccount(deps.db, opts.account);
    const secrets = opts.rotate
      ? await rotateToolSecret(deps.db, account.id, cfg.RUNYARD_SECRET, cfg.TOOL_SECRET_GRACE_MS)
      : await accountToolSecrets(deps.db, account.id, cfg.RUNYARD_SECRET);
    print(outputOf(cmd), { account: opts.account, accountId: account.id, secret: secrets.current, previous: secrets.previous }, () =>
      [secrets.current, ...(secrets.previous ? ['', `the previous secret still signs too, until the grace period ends: ${secrets.previous}`] : [])].join('\n'),
    );
  });

accounts
  .command('settings')
  .description(
    'show an account\'s settings; --retention-days: how long its idle chats are kept; --compaction-threshold: the % of a model\'s window at which its chats are compacted ("default" puts either back to the deployment\'s); --weight: its share of a saturated fleet (default 1); --max-running: its running runs fleet-wide at most ("none": no cap); --file-quota-mb: what its uploaded files may hold together',
  )
  .requiredOption('--account <name>', 'account name')
  .option('--retention-days <days>', 'days, at least 1, or "default"')
  .option('--compaction-threshold <percent>', 'percent, 1 to 100, or "default"')
  .option('--weight <weight>', 'whole number, 1 to 1000, or "default" (1)')
  .option('--max-running <runs>', 'whole number, at least 1, or "none"')
  .option('--file-quota-mb <mib>', 'MiB, at least 1, or "default" (FILE_QUOTA_MB)')
  .action(
    async (
      opts: { account: string; retentionDays?: string; compactionThreshold?: string; weight?: string; maxRunning?: string; fileQuotaMb?: string },
      cmd: Command,
    ) => {
      const deps = connect(config());
      const account = await findAccount(deps.db, opts.account);
      const settings = await updateAccountSettings(deps, account, {
        retentionDays: wholeOrDefault(opts.retentionDays, '--retention-days', 1, 36_500),
        compactionThresholdPercent: wholeOrDefault(opts.compactionThreshold, '--compaction-threshold', 1, 100),
        weight: wholeOrDefault(opts.weight, '--weight', 1, 1000),
        maxRunning: wholeOrDefault(opts.maxRunning, '--max-running', 1, 1_000_000, 'none'),
        fileQuotaMb: wholeOrDefault(opts.fileQuotaMb, '--file-quota-mb', 1, 10_000_000),
      });
      print(outputOf(cmd), settings, () =>
        [
          `${settings.account}: idle chats kept ${settings.retentionDays === null ? 'until a retention period is set (no RETENTION_DAYS)' : `${settings.retentionDays} days`}${settings.retentionDaysIsDefault && settings.retentionDays !== null ? ' (RETENTION_DAYS)' : ''}`,
          `compacted at ${settings.compactionThresholdPercent}% of the model's window${settings.compactionThresholdIsDefault ? ' (COMPACTION_THRESHOLD_PERCENT)' : ''}`,
          `fair share weight ${settings.weight}, ${settings.maxRunning === null ? 'no cap on running runs' : `at most ${settings.maxRunning} running runs`}`,
          `uploaded files hold at most ${settings.fileQuotaMb} MiB${settings.fileQuotaIsDefault ? ' (FILE_QUOTA_MB)' : ''}`,
        ].join('\n'),
      );
    },
  );

accounts
  .command('erase')
  .description(
    'erase all of an account’s data: its keys stop working, its active runs are interrupted, its chats, runs, messages and the account itself are deleted (Postgres and Redis)',
  )
  .requiredOption('--account <name>', 'account name (or id)')
  .option('--yes', 'really erase it (required: this cannot be undone)')
  .action(async (opts: { account: string; yes?: boolean }, cmd: Command) => {
    if (!opts.yes) throw new UsageError('erasing an account cannot be undone: add --yes');
    const deps = connect(config());
    const erased = await eraseAccount(deps, await findAccount(deps.db, opts.account));
    print(outputOf(cmd), erased, () => `erased account "${erased.account}" (${erased.accountId}): ${erased.chats} chats, ${erased.runs} runs`);
  });

/** An option that takes a whole number in [min, max] or "default" (null); undefined when not given. */
/** A whole number from min to max, `unset` (default: "default") for null, or undefined when the option is absent. */
function wholeOrDefault(value: string | undefined, option: string, min: number, max: number, unset = 'default'): number | null | undefined {
  if (value === undefined) return undefined;
  if (value === unset) return null;
  const number = Number(value);
  if (!Number.isInteger(number) || number < min || number > max) throw new UsageError(`${option} must be a whole number from ${min} to ${max}, or "${unset}"`);
  return number;
}

accounts
  .command('limits')
  .description(
    "show an account's spend limits and what it consumed this period; set them with --spend-usd and/or --tokens (a limit not named keeps its value; 'none' removes that one) and --period; --clear removes them all",
  )
  .requiredOption('--account <name>', 'account name')
  .addOption(new Option('--period <period>', 'UTC calendar period the limits apply to (required the first time)').choices([...LIMIT_PERIODS]))
  .option('--spend-usd <dollars>', "spend limit in US dollars (priced models), e.g. 5 or 0.25; 'none' removes it")
  .option('--tokens <tokens>', "token limit (input + output of every model, local/echo included); 'none' removes it")
  .option('--clear', 'remove the limits')
  .action(async (opts: { account: string; period?: LimitPeriod; spendUsd?: string; tokens?: string; clear?: boolean }, cmd: Command) => {
    const deps = connect(config());
    const account = await findAccount(deps.db, opts.account);
    const setting = opts.spendUsd !== undefined || opts.tokens !== undefined || opts.period !== undefined;
    if (opts.clear && setting) throw new UsageError('--clear takes no other limit option');
    if (opts.clear) await setAccountLimits(deps.db, account.id, null);
    else if (setting) {
      // Limits merge like settings: what this command does not name keeps its value.
      const current = await accountUsage(deps.db, account.id);
      const period = opts.period ?? (current.limits ? (current.period as LimitPeriod) : undefined);
      if (!period) throw new UsageError('--period (day, week or month) is required to set the first limits');
      const dollars = opts.spendUsd === undefined || opts.spendUsd === 'none' ? null : Number(opts.spendUsd);
      if (dollars !== null && !(Number.isFinite(dollars) && dollars >= 0))
        throw new UsageError("--spend-usd must be a number of dollars, at least 0, or 'none'");
      const tokens = opts.tokens === undefined || opts.tokens === 'none' ? null : Number(opts.tokens);
      if (tokens !== null && !(Number.isSafeInteger(tokens) && tokens >= 0)) throw new UsageError("--tokens must be a whole number, at least 0, or 'none'");
      await setAccountLimits(deps.db, account.id, {
        period,
        spendMicros: opts.spendUsd === undefined ? (current.limits?.spendMicros ?? null) : dollars === null ? null : Math.round(dollars * 1_000_000),
        tokens: opts.tokens === undefined ? (current.limits?.tokens ?? null) : tokens,
      });
    }
    const usage = await accountUsage(deps.db, account.id);
    print(outputOf(cmd), { account: account.name, accountId: account.id, ...usage }, () => {
      const usd = (micros: number) => `$${(micros / 1_000_000).toFixed(6).replace(/0{1,4}$/, '')}`;
      const limits = usage.limits
        ? `limits per ${usage.period}: ${usage.limits.spendMicros === null ? 'no spend limit' : usd(usage.limits.spendMicros)}, ${usage.limits.tokens === null ? 'no token limit' : `${usage.limits.tokens} tokens`}`
        : 'no limits';
      return [
        `${account.name}: ${limits}`,
        `this ${usage.period} (${usage.periodStart} until ${usage.resetsAt}): ${usd(usage.consumed.spendMicros)} and ${usage.consumed.tokens} tokens`,
        ...(usage.limitReached ? [`LIMIT REACHED (${usage.limitReached.kind}): new runs and messages are refused until ${usage.resetsAt}`] : []),
      ].join('\n');
    });
  });

program
  .command('retention')
  .description('history retention')
  .command('run')
  .description(
    'one retention pass now: erase every idle chat older than its account’s retention, and uploads attached to no chat after a day; reports what it deleted',
  )
  .action(async (_opts: unknown, cmd: Command) => {
    const deps = connect(config());
    const report = await pruneExpiredChats({ db: deps.db, redis: deps.redis, admission: deps.admission, config: deps.config });
    print(outputOf(cmd), report, () => `erased ${report.chatsDeleted} chats (${report.runsDeleted} runs) and ${report.filesDeleted} unattached files`);
  });

const secrets = accounts.command('secrets').description("an account's named secrets: credentials its MCP servers get (mcpServers[].auth)");
const readStdin = async (): Promise<string> => {
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks)
    .toString('utf8')
    .replace(/\r?\n$/, '');
};
secrets
  .command('set')
  .description('set a secret from standard input (sealed at rest; never shown again)')
  .requiredOption('--account <name>', 'account name')
  .requiredOption('--name <name>', 'the secret’s name, as mcpServers[].auth.secret names it')
  .requiredOption('--value-stdin', 'read the value from standard input (never from the command line)')
  .action(async (opts: { account: string; name: string }, cmd: Command) => {
    if (!SECRET_NAME.test(opts.name)) throw new UsageError('--name must be 1 to 64 letters, digits, _ . or -');
    const value = await readStdin();
    if (!value) throw new UsageError('standard input was empty: pipe the secret in (--value-stdin)');
    const deps = connect(config());
    const account = await findAccount(deps.db, opts.account);
    await setAccountSecret(deps.db, account.id, opts.name, value, deps.config.RUNYARD_SECRET);
    print(outputOf(cmd), { account: account.name, name: opts.name, set: true }, () => `${account.name}: secret ${opts.name} set`);
  });
secrets
  .command('list')
  .description('the names of an account’s secrets (never their values)')
  .requiredOption('--account <name>', 'account name')
  .action(async (opts: { account: string }, cmd: Command) => {
    const deps = connect(config());
    const account = await findAccount(deps.db, opts.account);
    const names = await accountSecretNames(deps.db, account.id);
    print(outputOf(cmd), names, () => table(names, ['name', 'updatedAt']));
  });
secrets
  .command('unset')
  .description('remove a secret')
  .requiredOption('--account <name>', 'account name')
  .requiredOption('--name <name>', 'the secret’s name')
  .action(async (opts: { account: string; name: string }, cmd: Command) => {
    const deps = connect(config());
    const account = await findAccount(deps.db, opts.account);
    if (!(await unsetAccountSecret(deps.db, account.id, opts.name)))
      throw new AppError('secret_not_found', 404, `${account.name} has no secret ${opts.name}.`, 'List them with `accounts secrets list`.');
    print(outputOf(cmd), { account: account.name, name: opts.name, unset: true }, () => `${account.name}: secret ${opts.name} removed`);
  });

const providerKeys = accounts
  .command('provider-keys')
  .description("an account's own provider keys (bring your own key): its runs use them instead of the deployment's");
providerKeys
  .command('set')
  .description('set the account’s key for a provider, from standard input (sealed at rest; never shown again)')
  .requiredOption('--account <name>', 'account name')
  .addOption(new Option('--provider <provider>', 'the provider').choices([...KEYED_PROVIDERS]).makeOptionMandatory())
  .requiredOption('--key-stdin', 'read the key from standard input (never from the command line)')
  .option('--base-url <url>', 'the provider’s base URL for this account (an OpenAI-compatible server, a proxy)')
  .action(async (opts: { account: string; provider: KeyedProvider; baseUrl?: string }, cmd: Command) => {
    if (opts.baseUrl !== undefined && !/^https?:\/\/\S+$/.test(opts.baseUrl)) throw new UsageError('--base-url must be an http(s) URL');
    const key = await readStdin();
    if (!key) throw new UsageError('standard input was empty: pipe the key in (--key-stdin)');
    const deps = connect(config());
    const account = await findAccount(deps.db, opts.account);
    await setProviderKey(deps.db, account.id, opts.provider, key, opts.baseUrl ?? null, deps.config.RUNYARD_SECRET);
    print(outputOf(cmd), { account: account.name, provider: opts.provider, set: true }, () => `${account.name}: its own ${opts.provider} key set`);
  });
providerKeys
  .command('list')
  .description('which providers the account has its own key for (never the keys)')
  .requiredOption('--account <name>', 'account name')
  .action(async (opts: { account: string }, cmd: Command) => {
    const deps = connect(config());
    const rows = await providerKeysOf(deps.db, (await findAccount(deps.db, opts.account)).id);
    print(outputOf(cmd), rows, () => table(rows, ['provider', 'baseUrl', 'updatedAt']));
  });
providerKeys
  .command('unset')
  .description('remove the account’s key for a provider: its runs use the deployment’s again')
  .requiredOption('--account <name>', 'account name')
  .addOption(new Option('--provider <provider>', 'the provider').choices([...KEYED_PROVIDERS]).makeOptionMandatory())
  .action(async (opts: { account: string; provider: KeyedProvider }, cmd: Command) => {
    const deps = connect(config());
    const account = await findAccount(deps.db, opts.account);
    if (!(await unsetProviderKey(deps.db, account.id, opts.provider)))
      throw new AppError(
        'provider_key_not_found',
        404,
        `${account.name} has no ${opts.provider} key of its own.`,
        'List them with `accounts provider-keys list`.',
      );
    print(outputOf(cmd), { account: account.name, provider: opts.provider, unset: true }, () => `${account.name}: its own ${opts.provider} key removed`);
  });

const models = program.command('models').description('the model catalogue: prices, context windows, what models read, disabled, the default (SPEC section 21)');
const usdOrNone = (value: string | undefined, flag: string) => {
  if (value === undefined) return undefined;
  if (value === 'none') return null;
  const number = Number(value);
  if (!Number.isFinite(number) || number < 0) throw new UsageError(`${flag} must be a number of US dollars per million tokens, or "none"`);
  return number;
};
models
  .command('list')
  .description('every model of the catalogue: the built-in table and the operator’s rows')
  .action(async (_opts: unknown, cmd: Command) => {
    const deps = connect(config());
    await refreshCatalogue(deps.db);
    const rows = catalogueViews(deps.config.DEFAULT_MODEL, contextWindows(deps.config));
    print(outputOf(cmd), rows, () =>
      table(
        rows.map((row) => ({
          id: row.id,
          input: row.prices?.inputUsdPerMTok ?? 'unpriced',
          output: row.prices?.outputUsdPerMTok ?? '',
          cachedInput: row.prices?.cachedInputUsdPerMTok ?? '',
          context: row.contextTokens ?? '',
          reads: [row.reads.images ? 'images' : '', row.reads.pdf ? 'pdf' : ''].filter(Boolean).join(' '),
          enabled: row.enabled ? 'yes' : 'no',
          default: row.default ? 'yes' : '',
          source: row.source,
        })),
        ['id', 'input', 'output', 'cachedInput', 'context', 'reads', 'enabled', 'default', 'source'],
      ),
    );
  });
models
  .command('set <model>')
  .description('price a model, set its window and what it reads, disable it or make it the default (what is not named keeps its value)')
  .option('--input-usd-per-mtok <usd>', "input price, US dollars per million tokens ('none': unpriced)")
  .option('--output-usd-per-mtok <usd>', "output price, US dollars per million tokens ('none': unpriced)")
  .option('--cached-input-usd-per-mtok <usd>', "cached input price ('none': as input)")
  .option('--context-tokens <n>', "the context window, in tokens ('none': the built-in one)")
  .option('--images', 'it reads images')
  .option('--no-images', 'it reads no images')
  .option('--pdf', 'it reads PDFs')
  .option('--no-pdf', 'it reads no PDFs')
  .option('--disabled', 'refuse it (400 model_disabled)')
  .option('--enabled', 'accept it again')
  .option('--default', 'the model of a run that names none')
  .action(
    async (
      modelId: string,
      opts: {
        inputUsdPerMtok?: string;
        outputUsdPerMtok?: string;
        cachedInputUsdPerMtok?: string;
        contextTokens?: string;
        images?: boolean;
        pdf?: boolean;
        disabled?: boolean;
        enabled?: boolean;
        default?: boolean;
      },
      cmd: Command,
    ) => {
      if (!parseModelId(modelId)) throw new UsageError(`"${modelId}" is not provider/model (local, openai or anthropic)`);
      if (opts.disabled && opts.enabled) throw new UsageError('--disabled and --enabled together');
      const contextTokens = opts.contextTokens === undefined ? undefined : opts.contextTokens === 'none' ? null : Number.parseInt(opts.contextTokens, 10);
      if (typeof contextTokens === 'number' && !(contextTokens >= 16)) throw new UsageError('--context-tokens must be a whole number, at least 16, or "none"');
      const deps = connect(config());
      await setCatalogueEntry(deps.db, modelId, {
        inputUsdPerMTok: usdOrNone(opts.inputUsdPerMtok, '--input-usd-per-mtok'),
        outputUsdPerMTok: usdOrNone(opts.outputUsdPerMtok, '--output-usd-per-mtok'),
        cachedInputUsdPerMTok: usdOrNone(opts.cachedInputUsdPerMtok, '--cached-input-usd-per-mtok'),
        contextTokens,
        images: opts.images,
        pdf: opts.pdf,
        disabled: opts.disabled ? true : opts.enabled ? false : undefined,
        default: opts.default,
      });
      const row = catalogueViews(deps.config.DEFAULT_MODEL, contextWindows(deps.config)).find((model) => model.id === modelId)!;
      print(outputOf(cmd), row, () =>
        [
          `${row.id}: ${row.prices ? `$${row.prices.inputUsdPerMTok} in / $${row.prices.outputUsdPerMTok} out per million tokens` : 'unpriced'}`,
          `${row.enabled ? 'enabled' : 'disabled'}${row.default ? ', the default' : ''}; reads ${[row.reads.images ? 'images' : '', row.reads.pdf ? 'PDFs' : ''].filter(Boolean).join(' and ') || 'text only'}`,
          'api and workers use it within 5 s.',
        ].join('\n'),
      );
    },
  );
models
  .command('unset <model>')
  .description('remove the operator’s row: the model goes back to the built-in table (or out of the catalogue)')
  .action(async (modelId: string, _opts: unknown, cmd: Command) => {
    const deps = connect(config());
    if (!(await unsetCatalogueEntry(deps.db, modelId)))
      throw new AppError('model_not_found', 404, `The catalogue has no operator row for ${modelId}.`, 'List them with `models list`.');
    print(outputOf(cmd), { modelId, unset: true }, () => `${modelId}: back to the built-in table`);
  });

const webhooks = program.command('webhooks').description('run webhooks: the delivery log and redelivery');
webhooks
  .command('deliveries')
  .description('the delivery log of a run: every event and each attempt to deliver it')
  .requiredOption('--run <runId>', 'the run')
  .action(async (opts: { run: string }, cmd: Command) => {
    const deps = connect(config());
    await getRunForCaller(deps, OPERATOR, opts.run);
    const events = await webhookEventsOfRun(deps.db, opts.run);
    print(
      outputOf(cmd),
      events,
      () =>
        events
          .map((event) =>
            [
              `${event.type} ${event.eventId} ${event.status} (${event.attempts} attempt(s))${event.lastError ? `: ${event.lastError}` : ''}`,
              ...event.deliveries.map((d) => `  ${d.at} ${d.statusCode ?? '-'} ${d.latencyMs} ms${d.error ? ` ${d.error}` : ''}`),
            ].join('\n'),
          )
          .join('\n') || 'no webhook events',
    );
  });
webhooks
  .command('redeliver [eventId]')
  .description('send an event again (same webhook-id), or with --failed every failed event')
  .option('--failed', 'every failed event (bulk)')
  .option('--since <duration>', 'with --failed: created within, e.g. 2h')
  .option('--limit <n>', 'with --failed: at most this many', '1000')
  .action(async (eventId: string | undefined, opts: { failed?: boolean; since?: string; limit: string }, cmd: Command) => {
    if (Boolean(opts.failed) === Boolean(eventId)) throw new UsageError('give an event id, or --failed (not both)');
    const deps = connect(config());
    if (eventId) {
      if (!/^[0-9a-f-]{36}$/i.test(eventId)) throw new UsageError(`"${eventId}" is not an event id`);
      const result = await redeliverWebhookEvent(deps.db, eventId);
      print(outputOf(cmd), result, () => `${eventId}: queued for delivery`);
      return;
    }
    const limit = Number(opts.limit);
    if (!Number.isInteger(limit) || limit < 1 || limit > 10_000) throw new UsageError('--limit must be 1..10000');
    const since = opts.since ? new Date(Date.now() - parseDuration(opts.since)) : undefined;
    const eventIds = await redeliverFailedWebhookEvents(deps.db, { since, limit });
    print(outputOf(cmd), { eventIds }, () => `queued ${eventIds.length} failed event(s) for delivery`);
  });

const chats = program.command('chats').description('conversations');
chats
  .command('show <chatId>')
  .description('a chat: idle or busy, its active run, settings, and its queued messages in order')
  .action(async (chatId: string, _opts: unknown, cmd: Command) => {
    if (!isRunId(chatId)) throw new AppError('chat_not_found', 404, 'The chat was not found.', 'Check the id.');
    const deps = connect(config());
    const chat = await getChat(deps, OPERATOR, chatId);
    const { queuedMessages } = await listQueuedMessages(deps, OPERATOR, chatId);
    print(outputOf(cmd), { ...chat, queue: queuedMessages }, () =>
      [
        `${chat.chatId}  ${chat.status}${chat.archived ? ' (archived)' : ''}  active run: ${chat.activeRunId ?? '-'}  model: ${chat.settings.model}`,
        `queued messages: ${queuedMessages.length}`,
        ...queuedMessages.map((q) => `  ${q.position}. ${q.queuedMessageId}  ${JSON.stringify(q.parts).slice(0, 80)}`),
      ].join('\n'),
    );
  });

chats
  .command('delete <chatId>')
  .description('erase a chat now: its active run interrupted, then everything of it gone from Postgres and Redis')
  .action(async (chatId: string, _opts: unknown, cmd: Command) => {
    if (!isRunId(chatId)) throw new AppError('chat_not_found', 404, 'The chat was not found.', 'Check the id.');
    const result = await deleteChat(connect(config()), OPERATOR, chatId);
    print(outputOf(cmd), result, () => `${result.chatId}: erased (${result.runs} runs)`);
  });

const runs = program.command('runs').description('runs');
const RUN_COLUMNS = ['runId', 'status', 'model', 'attempt', 'createdAt', 'finishedAt'];
runs
  .command('list')
  .description('list runs of every account, newest first')
  .addOption(new Option('--status <status>').choices([...RUN_STATUSES]))
  .option('--since <duration>', 'only runs created within, e.g. 1h')
  .option('--limit <n>', 'at most this many', '50')
  .action(async (opts: { status?: RunStatus; since?: string; limit: string }, cmd: Command) => {
    const since = opts.since ? new Date(Date.now() - parseDuration(opts.since)) : undefined;
    const limit = Number(opts.limit);
    if (!Number.isInteger(limit) || limit < 1 || limit > 1000) throw new UsageError('--limit must be 1..1000');
    const view = await listRunsForOperator(connect(config()), { status: opts.status, since, limit });
    print(outputOf(cmd), view, () => table(view, [...RUN_COLUMNS, 'errorCode']));
  });
runs
  .command('show <runId>')
  .description('show a run with its attempts, steps and tool calls')
  .action(async (runId: string, _opts: unknown, cmd: Command) => {
    const deps = connect(config());
    const run = await getRunForCaller(deps, OPERATOR, runId);
    const [attempts, steps] = await Promise.all([
      deps.db.runAttempt.findMany({
        where: { runId },
        orderBy: { attempt: 'asc' },
        select: { attempt: true, workerId: true, status: true, startedAt: true, finishedAt: true, errorCode: true, errorMessage: true },
      }),
      deps.db.runStep.findMany({
        where: { runId },
        orderBy: [{ episode: 'asc' }, { step: 'asc' }],
        select: { episode: true, step: true, attempt: true, text: true, toolCalls: true, results: true, createdAt: true },
      }),
    ]);
    const stepViews = steps.map((step) => ({
      episode: step.episode,
      step: step.step,
      attempt: step.attempt,
      text: step.text,
      toolCalls: (step.toolCalls as StepToolCall[]).map((call) => {
        const result = (step.results as Record<string, { output?: unknown; error?: string }>)[call.toolCallId];
        return {
          toolCallId: call.toolCallId,
          toolName: call.toolName,
          idempotencyKey: call.idempotencyKey,
          outcome: !result ? 'pending' : result.error !== undefined ? `error: ${result.error}` : 'output',
        };
      }),
    }));
    const stepLines = stepViews.flatMap((step) => [
      `episode ${step.episode} step ${step.step} (attempt ${step.attempt})${step.text ? `: ${step.text.slice(0, 60)}` : ''}`,
      ...step.toolCalls.map((call) => `  ${call.toolName} ${call.toolCallId} → ${call.outcome}`),
    ]);
    print(
      outputOf(cmd),
      { ...run, attempts, steps: stepViews },
      () =>
        `${table([run], [...RUN_COLUMNS, 'steps', 'finishReason'])}\n\nattempts:\n${table(attempts, ['attempt', 'workerId', 'status', 'startedAt', 'finishedAt', 'errorCode'])}` +
        (stepLines.length
          ? `\n\ntool steps (the last step of an episode, an answer without tool calls, is in the chat's messages):\n${stepLines.join('\n')}`
          : ''),
    );
  });
runs
  .command('cancel <runId>')
  .description('cancel a run (a running one stops within a second)')
  .action(async (runId: string, _opts: unknown, cmd: Command) => {
    const result = await cancelRun(connect(config()), OPERATOR, runId);
    print(outputOf(cmd), result, () => `${result.runId}: ${result.status}`);
  });
runs
  .command('replay [runIds...]')
  .description('replay the given runs, or with --failed every failed run matching the filters')
  .option('--failed', 'replay failed runs (bulk)')
  .option('--since <duration>', 'with --failed: finished within, e.g. 2h')
  .option('--model <model>', 'with --failed: only this model')
  .option('--limit <n>', 'with --failed: at most this many', '1000')
  .option('--dry-run', 'list what would be replayed')
  .action(async (runIds: string[], opts: { failed?: boolean; since?: string; model?: string; limit: string; dryRun?: boolean }, cmd: Command) => {
    const output = outputOf(cmd);
    if (Boolean(opts.failed) === runIds.length > 0) throw new UsageError('give run ids, or --failed with filters (not both)');
    const deps = connect(config());
    const limit = Number(opts.limit);
    if (opts.failed && (!Number.isInteger(limit) || limit < 1 || limit > 10_000)) throw new UsageError('--limit must be 1..10000');
    const since = opts.since ? new Date(Date.now() - parseDuration(opts.since)) : undefined;
    const bar =
      !output.json && process.stderr.isTTY && !opts.dryRun
        ? new cliProgress.SingleBar({ stream: process.stderr, format: 'replaying [{bar}] {value}/{total} {runId}' }, cliProgress.Presets.shades_classic)
        : undefined;
    const result = await replayRuns(deps, opts.failed ? { failed: { since, model: opts.model, limit } } : { runIds }, {
      dryRun: Boolean(opts.dryRun),
      onEach: (outcome, total) => {
        if (bar && bar.getTotal() !== total) bar.start(total, 0, { runId: '' });
        bar?.increment(1, { runId: outcome.runId });
      },
    });
    bar?.stop();
    const failed = result.runs.filter((run) => !run.replayed);
    print(output, result, () =>
      result.dryRun
        ? `would replay ${result.runs.length} run(s)\n${result.runs.map((run) => run.runId).join('\n')}`
        : `replayed ${result.runs.length - failed.length} of ${result.runs.length} run(s)${failed.map((f) => `\n  ${f.runId}: ${f.error}`).join('')}`,
    );
    if (!result.dryRun && failed.length > 0) process.exitCode = 1;
  });

program
  .command('db')
  .description('database')
  .command('migrate')
  .description('create the database if missing and apply pending migrations')
  .action(async (_opts: unknown, cmd: Command) => {
    const result = await migrateOrExplain(config().DATABASE_URL);
    print(outputOf(cmd), result, () =>
      [result.databaseCreated ? 'created the database' : null, result.applied.length ? `applied: ${result.applied.join(', ')}` : 'no pending migrations']
        .filter(Boolean)
        .join('\n'),
    );
  });

/** An unexpected error in one line: a Prisma error's message carries a source excerpt, whose last line says what happened. */
function plainMessage(err: unknown): string {
  const message = err instanceof Error ? err.message : String(err);
  const lines = message
    .split('\n')
    .map((line) => line.trim())
    .filter(Boolean);
  return (err instanceof Error && err.name.startsWith('PrismaClient') ? lines.at(-1) : lines[0]) ?? 'unknown error';
}

function exitCodeFor(err: unknown): number {
  if (err instanceof CommanderError) return err.exitCode === 0 ? 0 : 2;
  if (err instanceof UsageError || err instanceof ConfigError) return 2;
  if (err instanceof AppError && (err.status === 401 || err.status === 403 || err.status === 400)) return 2;
  return 1;
}

/** Every long option any command takes (--json included). */
function knownOptions(command: Command): Set<string> {
  const known = new Set<string>(['--help', '--version']);
  const visit = (cmd: Command) => {
    for (const option of cmd.options) if (option.long) known.add(option.long);
    for (const sub of cmd.commands) visit(sub);
  };
  visit(command);
  return known;
}

/** The options on the command line no command takes, each with the closest known one. */
function unknownOptions(argv: string[]): string[] {
  const known = [...knownOptions(program)];
  const distance = (a: string, b: string) => {
    const row = Array.from({ length: b.length + 1 }, (_, j) => j);
    for (let i = 1; i <= a.length; i++) {
      let previous = row[0]!;
      row[0] = i;
      for (let j = 1; j <= b.length; j++) {
        const current = row[j]!;
        row[j] = Math.min(row[j]! + 1, row[j - 1]! + 1, previous + (a[i - 1] === b[j - 1] ? 0 : 1));
        previous = current;
      }
    }
    return row[b.length]!;
  };
  return argv
    .filter((arg) => arg.startsWith('--'))
    .map((arg) => arg.split('=')[0]!)
    .filter((flag) => !known.includes(flag))
    .map((flag) => {
      const closest = known.map((name) => ({ name, d: distance(flag, name) })).sort((a, b) => a.d - b.d)[0];
      return closest && closest.d <= 3 ? `unknown option '${flag}' (did you mean ${closest.name}?)` : `unknown option '${flag}'`;
    });
}

/** What failed, in a code and a line: a database that is missing or unreachable says which and what to do. */
function describeFailure(err: unknown): { code: string; message: string } {
  if (err instanceof AppError) return { code: err.code, message: `${err.code}: ${err.message}` };
  const code = [(err as { code?: unknown })?.code, ((err as { cause?: { code?: unknown } })?.cause ?? {}).code].find((c) => typeof c === 'string');
  const message = plainMessage(err);
  if (code === '3D000' || /database \S+ does not exist/i.test(message))
    return { code: 'database_missing', message: `${message}: create and migrate it with "npm run cli -- db migrate" (npm start does too)` };
  if (isDatabaseUnreachable(err) || code === 'ECONNREFUSED')
    return { code: 'database_unavailable', message: `${message}: check that Postgres runs where DATABASE_URL says` };
  return { code: 'internal_error', message };
}

try {
  await program.parseAsync(process.argv);
} catch (err) {
  const code = exitCodeFor(err);
  if (err instanceof CommanderError) {
    const unknown = err.code === 'commander.missingMandatoryOptionValue' ? unknownOptions(process.argv.slice(2)) : [];
    process.stderr.write(unknown.length > 0 ? `error: ${unknown.join('; ')}\n` : commanderErrors);
  } else {
    const failure = describeFailure(err);
    if (process.argv.includes('--json')) process.stdout.write(`${JSON.stringify({ error: failure.code, detail: failure.message })}\n`);
    else process.stderr.write(`runyard: ${failure.message}\n`);
  }
  process.exitCode = code;
} finally {
  await runtime?.close();
}
