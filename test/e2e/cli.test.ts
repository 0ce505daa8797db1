import { execFile } from 'node:child_process';
import path from 'node:path';
import { expect } from 'chai';
import request from 'supertest';
import { Webhook } from 'standardwebhooks';
import { signedHeaders } from '../../shared/accounts/toolSecrets.js';
import { startApi, type ApiHarness } from '../support/harness.js';
import { testEnv } from '../support/testConfig.js';
import { createAccount } from '../support/factories.js';
import { startRunOk } from '../support/runs.js';
import { refreshCatalogue } from '../../shared/agent/modelCatalogue.js';

const ROOT = path.resolve(import.meta.dirname, '../..');

type CliResult = { code: number; stdout: string; stderr: string };

describe('the operator CLI', function () {
  this.timeout(60_000);
  let api: ApiHarness;
  before(() => {
    api = startApi();
  });
  after(() => api.close());

  const cli = (...args: string[]) =>
    new Promise<CliResult>((resolve) => {
      execFile(
        process.execPath,
        ['--import', 'tsx', path.join(ROOT, 'scripts/cli.ts'), ...args],
        { env: { PATH: process.env.PATH ?? '', ...testEnv({ QUEUE_PREFIX: api.prefix }) } },
        (err, stdout, stderr) => resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr }),
      );
    });

  it('creates a key once (--json), lists it, and revokes it so the API refuses it', async () => {
    const created = await cli('keys', 'create', '--account', `cli-${Date.now()}`, '--json');
    expect(created.code).to.equal(0);
    const { key, id, scopes } = JSON.parse(created.stdout);
    expect(key).to.match(/^ry_sk_/);
    expect(scopes).to.deep.equal(['runs:write', 'runs:read']);
    expect((await request(api.app).get('/api/auth/whoami').set('authorization', `Bearer ${key}`)).status).to.equal(200);
    const listed = JSON.parse((await cli('keys', 'list', '--json')).stdout) as { id: string; prefix: string }[];
    const row = listed.find((k) => k.id === id)!;
    expect(row.prefix).to.equal(key.slice(0, 12));
    expect(JSON.stringify(listed)).to.not.include(key);
    expect((await cli('keys', 'revoke', id, '--json')).code).to.equal(0);
    await new Promise((resolve) => setTimeout(resolve, 2_100)); // the api's key cache bound
    expect((await request(api.app).get('/api/auth/whoami').set('authorization', `Bearer ${key}`)).status).to.equal(401);
  });

  it('names a misspelled option (not a "missing" one), and a missing database with what to do', async () => {
    const typo = await cli('keys', 'create', '--acount', 'demo');
    expect(typo.code).to.equal(2);
    expect(typo.stderr).to.include("unknown option '--acount' (did you mean --account?)");
    const missing = await new Promise<CliResult>((resolve) => {
      execFile(
        process.execPath,
        ['--import', 'tsx', path.join(ROOT, 'scripts/cli.ts'), 'keys', 'list', '--json'],
        {
          env: {
            PATH: process.env.PATH ?? '',
            ...testEnv({ QUEUE_PREFIX: api.prefix, DATABASE_URL: 'postgresql://postgres@127.0.0.1:5432/runyard_no_such_test_db' }),
          },
        },
        (err, stdout, stderr) => resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr }),
      );
    });
    expect(missing.code).to.equal(1);
    const answer = JSON.parse(missing.stdout);
    expect(answer.error).to.equal('database_missing');
    expect(answer.detail).to.include('db migrate');
  });

  it('prices, disables and unsets a model in the catalogue (models set, list, unset), and the api refuses the disabled one', async () => {
    const model = `openai/cli-model-${Date.now()}`;
    const set = await cli('models', 'set', model, '--input-usd-per-mtok', '1.25', '--output-usd-per-mtok', '10', '--context-tokens', '64000', '--json');
    expect(set.code, set.stderr).to.equal(0);
    expect(JSON.parse(set.stdout)).to.deep.include({ id: model, contextTokens: 64000, enabled: true, source: 'operator' });
    const listed = JSON.parse((await cli('models', 'list', '--json')).stdout) as { id: string; prices: { inputUsdPerMTok: number } | null }[];
    expect(listed.find((row) => row.id === model)?.prices?.inputUsdPerMTok).to.equal(1.25);
    expect(listed.find((row) => row.id === 'local/echo')).to.deep.include({ source: 'built-in' });
    expect((await cli('models', 'set', model, '--disabled')).code).to.equal(0);
    const alice = await createAccount(api.deps.db);
    await refreshCatalogue(api.deps.db);
    const refused = await request(api.app).post('/api/chat/runs').set(alice.auth).send({ prompt: 'x', model });
    expect([refused.status, refused.body.error]).to.deep.equal([400, 'model_disabled']);
    expect((await cli('models', 'unset', model)).code).to.equal(0);
    expect((await cli('models', 'unset', model)).code, 'nothing left to unset').to.equal(1);
    expect((await cli('models', 'set', 'nonsense')).code).to.equal(2);
    await refreshCatalogue(api.deps.db);
  });

  it('sets an account secret from standard input, lists its name only, and removes it (accounts secrets)', async () => {
    const account = `secrets-${Date.now()}`;
    expect((await cli('keys', 'create', '--account', account, '--json')).code).to.equal(0);
    const set = await new Promise<CliResult>((resolve) => {
      const child = execFile(
        process.execPath,
        [
          '--import',
          'tsx',
          path.join(ROOT, 'scripts/cli.ts'),
          'accounts',
          'secrets',
          'set',
          '--account',
          account,
          '--name',
          'MCP_TOKEN',
          '--value-stdin',
          '--json',
        ],
        { env: { PATH: process.env.PATH ?? '', ...testEnv({ QUEUE_PREFIX: api.prefix }) } },
        (err, stdout, stderr) => resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr }),
      );
      child.stdin!.end('value-from-stdin\n');
    });
    expect(set.code, set.stderr).to.equal(0);
    const listed = await cli('accounts', 'secrets', 'list', '--account', account, '--json');
    expect((JSON.parse(listed.stdout) as { name: string }[]).map((row) => row.name)).to.deep.equal(['MCP_TOKEN']);
    expect(listed.stdout).not.to.include('value-from-stdin');
    expect((await cli('accounts', 'secrets', 'unset', '--account', account, '--name', 'MCP_TOKEN')).code).to.equal(0);
    expect((await cli('accounts', 'secrets', 'unset', '--account', account, '--name', 'MCP_TOKEN')).code).to.equal(1);
  });

  it('lists, shows, cancels and replays runs', async () => {
    const alice = await createAccount(api.deps.db);
    const runId = await startRunOk(api.app, alice.key, { prompt: 'cli run' });
    const listed = JSON.parse((await cli('runs', 'list', '--status', 'queued', '--since', '1h', '--json')).stdout) as { runId: string }[];
    expect(listed.map((r) => r.runId)).to.include(runId);
    const shown = JSON.parse((await cli('runs', 'show', runId, '--json')).stdout);
    expect(shown).to.include({ runId, status: 'queued' });
    expect(shown.attempts).to.deep.equal([]);
    const cancelled = await cli('runs', 'cancel', runId, '--json');
    expect(JSON.parse(cancelled.stdout)).to.deep.equal({ runId, status: 'cancelled' });
    const dry = await cli('runs', 'replay', '--failed', '--since', '2h', '--dry-run', '--json');
    expect(dry.code).to.equal(0);
    expect(JSON.parse(dry.stdout).dryRun).to.equal(true);
    const replayed = await cli('runs', 'replay', runId, '--json');
    expect(replayed.code).to.equal(0);
    expect(JSON.parse(replayed.stdout).runs).to.deep.equal([{ runId, model: null, replayed: true, error: null }]);
    expect((await api.deps.db.run.findUniqueOrThrow({ where: { id: runId } })).status).to.equal('queued');
    const refused = await cli('runs', 'replay', runId, '--json');
    expect(refused.code).to.equal(1);
    expect(JSON.parse(refused.stdout).runs[0].error).to.match(/^run_not_terminal/);
  });

  it('shows a chat and its queue (chats show), as the admin API does', async () => {
    const alice = await createAccount(api.deps.db);
    const runId = await startRunOk(api.app, alice.key, { prompt: 'a chat' });
    const { chatId } = await api.deps.db.run.findUniqueOrThrow({ where: { id: runId } });
    // No worker here: the first run stays queued, so the next message waits behind it.
    const queued = await request(api.app).post(`/api/chats/${chatId}/messages`).set(alice.auth).send({ prompt: 'next' });
    const shown = JSON.parse((await cli('chats', 'show', chatId, '--json')).stdout);
    expect(shown).to.include({ chatId, status: 'busy', activeRunId: runId, queuedMessages: 1 });
    expect(shown.queue.map((q: { queuedMessageId: string }) => q.queuedMessageId)).to.deep.equal([queued.body.queuedMessageId]);
    expect((await cli('chats', 'show', 'notauuid')).stderr.trim()).to.equal('runyard: chat_not_found: The chat was not found.');
    const settings = await cli(
      'accounts',
      'settings',
      '--account',
      (await api.deps.db.account.findUniqueOrThrow({ where: { id: alice.accountId } })).name,
      '--retention-days',
      '7',
      '--json',
    );
    expect(JSON.parse(settings.stdout)).to.include({ retentionDays: 7, retentionDaysIsDefault: false });
    const pass = await cli('retention', 'run', '--json');
    expect(pass.code).to.equal(0);
    expect(JSON.parse(pass.stdout)).to.have.keys('chatsDeleted', 'runsDeleted', 'filesDeleted');
    expect(await api.deps.db.chat.count({ where: { id: chatId } }), 'a busy, recent chat is kept').to.equal(1);
    const erased = await cli('chats', 'delete', chatId, '--json');
    expect(JSON.parse(erased.stdout)).to.deep.equal({ chatId, deleted: true, runs: 1 });
    expect(await api.deps.db.chat.count({ where: { id: chatId } })).to.equal(0);
  });

  it('sets, shows and clears an account’s spend limits and compaction threshold, and erases the account (accounts limits, settings, erase)', async () => {
    const account = `limits-${Date.now()}`;
    expect((await cli('keys', 'create', '--account', account, '--json')).code).to.equal(0);
    const set = await cli('accounts', 'limits', '--account', account, '--spend-usd', '5', '--tokens', '200000', '--period', 'day', '--json');
    expect(set.code, set.stderr).to.equal(0);
    const shown = JSON.parse(set.stdout);
    expect(shown).to.deep.include({ account, period: 'day', limits: { spendMicros: 5_000_000, tokens: 200_000 }, consumed: { tokens: 0, spendMicros: 0 } });
    const text = await cli('accounts', 'limits', '--account', account);
    expect(text.stdout).to.include('limits per day: $5.00, 200000 tokens');
    const merged = JSON.parse((await cli('accounts', 'limits', '--account', account, '--tokens', '10', '--json')).stdout);
    expect(merged.limits, 'limits merge: --tokens alone keeps the spend limit and the period').to.deep.equal({ spendMicros: 5_000_000, tokens: 10 });
    expect(merged.period).to.equal('day');
    const oneRemoved = JSON.parse((await cli('accounts', 'limits', '--account', account, '--spend-usd', 'none', '--json')).stdout);
    expect(oneRemoved.limits).to.deep.equal({ spendMicros: null, tokens: 10 });
    const cleared = JSON.parse((await cli('accounts', 'limits', '--account', account, '--clear', '--json')).stdout);
    expect(cleared.limits).to.equal(null);
    const settings = JSON.parse((await cli('accounts', 'settings', '--account', account, '--compaction-threshold', '50', '--json')).stdout);
    expect(settings).to.include({ compactionThresholdPercent: 50, compactionThresholdIsDefault: false });
    const back = JSON.parse((await cli('accounts', 'settings', '--account', account, '--compaction-threshold', 'default', '--json')).stdout);
    expect(back).to.include({ compactionThresholdPercent: 70, compactionThresholdIsDefault: true });
    const bad = await cli('accounts', 'settings', '--account', account, '--compaction-threshold', '101');
    expect(bad.code).to.equal(2);
    const share = JSON.parse((await cli('accounts', 'settings', '--account', account, '--weight', '2', '--max-running', '5', '--json')).stdout);
    expect(share).to.include({ weight: 2, maxRunning: 5 });
    const uncapped = JSON.parse((await cli('accounts', 'settings', '--account', account, '--weight', 'default', '--max-running', 'none', '--json')).stdout);
    expect(uncapped).to.include({ weight: 1, maxRunning: null });
    const noCap = await cli('accounts', 'settings', '--account', account, '--max-running', '0');
    expect([noCap.code, noCap.stderr.trim()]).to.deep.equal([2, 'runyard: --max-running must be a whole number from 1 to 1000000, or "none"']);
    expect((await cli('accounts', 'limits', '--account', 'no-such-account')).code).to.equal(1);
    const other = `limits-first-${Date.now()}`;
    expect((await cli('keys', 'create', '--account', other, '--json')).code).to.equal(0);
    const noPeriod = await cli('accounts', 'limits', '--account', other, '--tokens', '10');
    expect([noPeriod.code, noPeriod.stderr]).to.satisfy(([code, stderr]: [number, string]) => code === 2 && stderr.includes('--period'));
    const unsure = await cli('accounts', 'erase', '--account', account);
    expect([unsure.code, unsure.stderr]).to.satisfy(([code, stderr]: [number, string]) => code === 2 && stderr.includes('--yes'));
    const erased = JSON.parse((await cli('accounts', 'erase', '--account', account, '--yes', '--json')).stdout);
    expect(erased).to.include({ account, deleted: true, chats: 0, runs: 0 });
    expect(await api.deps.db.account.count({ where: { name: account } })).to.equal(0);
  });

  it('shows and rotates an account’s tool secret; during the grace period both secrets sign', async () => {
    const account = `tools-${Date.now()}`;
    expect((await cli('keys', 'create', '--account', account, '--json')).code).to.equal(0);
    const shown = JSON.parse((await cli('accounts', 'tool-secret', '--account', account, '--json')).stdout);
    expect(shown.secret).to.match(/^whsec_/);
    expect(JSON.parse((await cli('accounts', 'tool-secret', '--account', account, '--json')).stdout).secret, 'stable until rotated').to.equal(shown.secret);
    const rotated = JSON.parse((await cli('accounts', 'tool-secret', '--account', account, '--rotate', '--json')).stdout);
    expect(rotated.secret)
      .to.match(/^whsec_/)
      .and.not.equal(shown.secret);
    expect(rotated.previous).to.equal(shown.secret);
    const payload = JSON.stringify({ hello: 'tool' });
    const headers = signedHeaders({ current: rotated.secret, previous: rotated.previous }, 'msg_cli', payload);
    expect(new Webhook(shown.secret).verify(payload, headers)).to.deep.equal({ hello: 'tool' });
    expect(new Webhook(rotated.secret).verify(payload, headers)).to.deep.equal({ hello: 'tool' });
    expect((await cli('accounts', 'tool-secret', '--account', 'nobody-by-this-name')).code).to.equal(1);
  });

  it('shows a run’s persisted tool steps with their calls', async () => {
    const alice = await createAccount(api.deps.db);
    const runId = await startRunOk(api.app, alice.key, { prompt: 'steps' });
    const toolCalls = [{ toolCallId: 'call_1', toolName: 'lookup', input: { q: 1 }, rawInput: '{"q":1}', idempotencyKey: 'msg_1' }];
    await api.deps.db.runStep.create({ data: { runId, episode: 0, step: 0, attempt: 1, text: 'looking', toolCalls, results: { call_1: { output: 'ok' } } } });
    const shown = JSON.parse((await cli('runs', 'show', runId, '--json')).stdout);
    expect(shown.steps).to.deep.equal([
      {
        episode: 0,
        step: 0,
        attempt: 1,
        text: 'looking',
        toolCalls: [{ toolCallId: 'call_1', toolName: 'lookup', idempotencyKey: 'msg_1', outcome: 'output' }],
      },
    ]);
    expect((await cli('runs', 'show', runId)).stdout).to.match(/lookup call_1 → output/);
  });

  it('exits 2 on usage errors and 1 on failures', async () => {
    expect((await cli('nonsense')).code).to.equal(2);
    expect((await cli('runs', 'list', '--since', 'yesterday')).code).to.equal(2);
    expect((await cli('runs', 'replay')).code).to.equal(2);
    const missing = await cli('runs', 'show', '00000000-0000-4000-8000-000000000000', '--json');
    expect(missing.code).to.equal(1);
    expect(JSON.parse(missing.stdout).error).to.equal('run_not_found');
  });

  it('says run_not_found for an id that is not a UUID, as the HTTP API does, for show, cancel and replay', async () => {
    for (const command of ['show', 'cancel']) {
      const result = await cli('runs', command, 'notauuid');
      expect([result.code, result.stderr.trim()], command).to.deep.equal([1, 'runyard: run_not_found: The run was not found.']);
    }
    const replay = await cli('runs', 'replay', 'notauuid', '--json');
    expect(replay.code).to.equal(1);
    expect(JSON.parse(replay.stdout).runs).to.deep.equal([{ runId: 'notauuid', model: null, replayed: false, error: 'run_not_found: The run was not found.' }]);
  });

  it('says which dependency it cannot reach, and what to check, instead of a stack: npm start and db migrate', async () => {
    const run = (script: string, env: Record<string, string>, ...args: string[]) =>
      new Promise<CliResult>((resolve) => {
        execFile(
          process.execPath,
          ['--import', 'tsx', path.join(ROOT, script), ...args],
          { env: { PATH: process.env.PATH ?? '', ...testEnv(env) } },
          (err, stdout, stderr) => resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr }),
        );
      });
    const noPostgres = { DATABASE_URL: 'postgresql://postgres@127.0.0.1:1/runyard' };
    const started = await run('scripts/start-all.ts', noPostgres);
    expect(started.code).to.equal(69);
    expect(started.stderr).to.match(/(^|\n)runyard: cannot reach Postgres at 127\.0\.0\.1:1 \(DATABASE_URL\) — .*ECONNREFUSED.*Check that Postgres is running/);
    expect(started.stderr, 'no stack').not.to.match(/\n\s+at /);
    const migrate = await run('scripts/cli.ts', noPostgres, 'db', 'migrate');
    expect([migrate.code, migrate.stderr]).to.satisfy(
      ([code, stderr]: [number, string]) => code === 1 && /cannot reach Postgres at 127\.0\.0\.1:1/.test(stderr),
    );
    const noRedis = await run('scripts/start-all.ts', { REDIS_URL: 'redis://127.0.0.1:1' });
    expect(noRedis.code).to.equal(69);
    expect(noRedis.stderr).to.match(/(^|\n)runyard: cannot reach Redis at 127\.0\.0\.1:1 \(REDIS_URL\)/);
  });

  it('migrates, and a second migrate is harmless', async () => {
    const first = await cli('db', 'migrate', '--json');
    const second = await cli('db', 'migrate', '--json');
    expect(first.code).to.equal(0);
    expect(second.code).to.equal(0);
    expect(JSON.parse(second.stdout)).to.include({ databaseCreated: false });
    expect(JSON.parse(second.stdout).applied).to.deep.equal([]);
  });
});
