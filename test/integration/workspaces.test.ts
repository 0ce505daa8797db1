import { createServer, type Server } from 'node:net';
import { expect } from 'chai';
import request from 'supertest';
import { findExecutable } from '../../shared/workspaces/workspaceRequest.js';
import { createAccount, type TestAccount } from '../support/factories.js';
import { startApi } from '../support/harness.js';
import { postRun, startRunOk, waitForRunStatus } from '../support/runs.js';
import { startStack, type Stack } from '../support/stack.js';
import { startGitDaemon, type GitDaemon } from '../support/gitDaemon.js';

type Outcome = { output?: Record<string, unknown>; error?: string };

/** `call <tool> <json>` lines, one step each: how local/echo calls tools. */
const steps = (...calls: [string, Record<string, unknown>][]) => calls.map(([tool, input]) => `call ${tool} ${JSON.stringify(input)}`).join('\nthen\n');

describe('workspaces: a run gets a sandboxed place to work (SPEC section 18)', function () {
  this.timeout(120_000);
  let stack: Stack;
  let alice: TestAccount;
  let repos: GitDaemon;

  before(async function () {
    if (!findExecutable('bwrap')) {
      if (process.env.CI === 'true') throw new Error('bwrap is missing: .ci/run should have installed the bubblewrap package');
      this.skip();
    }
    repos = await startGitDaemon({ 'README.md': '# demo\n', 'main.py': 'print("from the repository")\n' });
    stack = await startStack({
      WORKSPACE_EXEC_TIMEOUT_MS: '5000',
      WORKSPACE_MEMORY_MB: '128',
      WORKSPACE_MAX_BYTES: '8388608',
      WORKSPACE_GIT_ALLOWLIST: `http://127.0.0.1:1/,${repos.prefix}`,
    });
    alice = stack.alice;
  });
  after(async () => {
    await stack?.close();
    await repos?.close();
  });

  /** The persisted results of a run's tool calls, in call order. */
  const resultsOf = async (runId: string): Promise<Outcome[]> => {
    const rows = await stack.api.deps.db.runStep.findMany({ where: { runId }, orderBy: { step: 'asc' } });
    return rows.flatMap((row) => (row.toolCalls as { toolCallId: string }[]).map((call) => (row.results as Record<string, Outcome>)[call.toolCallId]!));
  };
  const runToEnd = async (runId: string) => {
    const run = await waitForRunStatus(stack.api.deps, runId, ['completed', 'failed'], 60_000);
    expect(run.status, `${run.errorCode}: ${run.errorMessage}`).to.equal('completed');
    return resultsOf(runId);
  };
  const send = async (chatId: string, body: Record<string, unknown>, account = alice) => {
    const res = await request(stack.api.app).post(`/api/chats/${chatId}/messages`).set(account.auth).send(body);
    expect(res.status, JSON.stringify(res.body)).to.equal(202);
    return res.body.runId as string;
  };

  it('three turns in one workspace: exec writes a file, read_file reads it back, a script calls runyard’s API with RUNYARD_RUN_KEY', async () => {
    const first = await startRunOk(stack.api.app, alice.key, {
      prompt: steps(['exec', { command: 'echo "hello from turn one" > notes.txt && mkdir -p src && echo done' }]),
      workspace: { files: [{ path: 'AGENTS.md', content: 'Be brief.' }] },
    });
    const [made] = await runToEnd(first);
    expect(made!.output).to.include({ exitCode: 0, stdout: 'done\n', timedOut: false, truncated: false });
    const { id: chatId, sessionId } = (await stack.api.deps.db.run.findUniqueOrThrow({ where: { id: first }, include: { chat: true } })).chat;

    const second = await send(chatId, { prompt: steps(['read_file', { path: 'notes.txt' }], ['list_files', {}]) });
    const [read, listed] = await runToEnd(second);
    expect(read!.output).to.include({ path: '/workspace/notes.txt', content: 'hello from turn one\n' });
    expect((listed!.output!.entries as { path: string }[]).map((entry) => entry.path)).to.include.members([
      '/workspace/AGENTS.md',
      '/workspace/notes.txt',
      '/workspace/src',
    ]);

    const third = await send(chatId, {
      prompt: steps([
        'exec',
        { command: 'curl -s -o body.json -w "%{http_code}" -H "authorization: Bearer $RUNYARD_RUN_KEY" "$RUNYARD_API_URL/api/chat/runs"; cat body.json' },
      ]),
    });
    const [called] = await runToEnd(third);
    const stdout = called!.output!.stdout as string;
    expect(stdout.slice(0, 3), stdout).to.equal('200');
    const body = JSON.parse(stdout.slice(3)) as { runs: { runId: string; status: string }[] };
    expect(body.runs.map((run) => [run.runId, run.status])).to.deep.equal([[third, 'running']]);
    // AGENTS.md went into the system prompt of the chat's model calls.
    const workspace = await request(stack.api.app).get(`/api/sessions/${sessionId}/workspace`).set(alice.auth);
    expect(workspace.status).to.equal(200);
    expect(workspace.body).to.include({ status: 'ready' });
    expect(workspace.body.version).to.be.at.least(3);
  });

  it('adds AGENTS.md to the system prompt, serves the files (list, download, upload while idle, 409 while busy), and is erased with its chat', async () => {
    const runId = await startRunOk(stack.api.app, alice.key, {
      prompt: 'hello [[call1:exec:{"command":"echo made > made.txt"}]]',
      model: 'openai/gpt-4o-mini',
      system: 'You are terse.',
      workspace: {
        files: [
          { path: 'AGENTS.md', content: 'Always run the tests first.' },
          { path: 'src/app.py', content: 'print(1)\n' },
        ],
      },
    });
    await runToEnd(runId);
    const calls = stack.fake.requests.filter((r) => JSON.stringify(r.body).includes(runId) || JSON.stringify(r.body).includes('made.txt'));
    const system = (calls[0]!.body.messages as { role: string; content: string }[]).find((m) => m.role === 'system')!.content;
    expect(system).to.include('You are terse.').and.include('Always run the tests first.');
    const { sessionId, id: chatId } = (await stack.api.deps.db.run.findUniqueOrThrow({ where: { id: runId }, include: { chat: true } })).chat;
    const base = `/api/sessions/${sessionId}/workspace`;
    const listed = await request(stack.api.app).get(`${base}/files`).set(alice.auth);
    expect(listed.status).to.equal(200);
    expect((listed.body.entries as { path: string }[]).map((e) => e.path)).to.deep.equal([
      '/workspace/AGENTS.md',
      '/workspace/made.txt',
      '/workspace/src',
      '/workspace/src/app.py',
    ]);
    const download = await request(stack.api.app).get(`${base}/files/content?path=made.txt`).set(alice.auth).buffer(true);
    expect([download.status, download.body.toString()]).to.deep.equal([200, 'made\n']);
    expect((await request(stack.api.app).get(`${base}/files/content?path=../../etc/passwd`).set(alice.auth)).status).to.equal(404);
    const upload = await request(stack.api.app)
      .put(`${base}/files/content?path=data/input.csv`)
      .set(alice.auth)
      .set('content-type', 'text/csv')
      .send('a,b\n1,2\n');
    expect(upload.status, JSON.stringify(upload.body)).to.equal(200);
    const next = await send(chatId, { prompt: 'read it [[call1:read_file:{"path":"data/input.csv"}]]', model: 'openai/gpt-4o-mini' });
    const [read] = await runToEnd(next);
    expect(read!.output).to.include({ content: 'a,b\n1,2\n' });
    const bob = await createAccount(stack.api.deps.db);
    expect((await request(stack.api.app).get(base).set(bob.auth)).status, 'another account’s').to.equal(404);
    const parked = await send(chatId, {
      prompt: 'hold on [[call1:hold:{}]]',
      model: 'openai/gpt-4o-mini',
      tools: [{ name: 'hold', inputSchema: { type: 'object' } }],
    });
    await waitForRunStatus(stack.api.deps, parked, ['requires_action']);
    const busy = await request(stack.api.app).put(`${base}/files/content?path=x.txt`).set(alice.auth).send('x');
    expect([busy.status, busy.body.error]).to.deep.equal([409, 'session_busy']);
    expect((await request(stack.api.app).delete(`/api/chats/${chatId}`).set(alice.auth)).status).to.equal(202);
    expect(await stack.api.deps.db.workspace.count({ where: { sessionId } })).to.equal(0);
    expect(await stack.api.deps.db.blob.count({ where: { key: { startsWith: `workspaces/${sessionId}/` } } }), 'its content erased').to.equal(0);
  });

  it('isolates a command: no host files, no worker environment, no other network, no way out by .. or a symlink', async () => {
    const listener: Server = await new Promise((resolve) => {
      const server = createServer((socket) => socket.end('secret')).listen(0, '127.0.0.1', () => resolve(server));
    });
    const port = (listener.address() as { port: number }).port;
    try {
      const runId = await startRunOk(stack.api.app, alice.key, {
        prompt: steps(
          ['exec', { command: 'cat /etc/shadow; ls /; env; echo "host=$(hostname)"' }],
          ['exec', { command: `curl -s --max-time 2 http://127.0.0.1:${port}/ && echo reached || echo refused` }],
          ['exec', { command: 'ln -s /etc outside && ln -s .. up && echo linked' }],
          ['read_file', { path: '../../etc/passwd' }],
          ['read_file', { path: 'outside/passwd' }],
          ['write_file', { path: 'up/escape.txt', content: 'x' }],
          ['read_file', { path: '/etc/hostname' }],
        ),
        workspace: true,
      });
      const [files, network, links, dotdot, symlink, writeOut, absolute] = await runToEnd(runId);
      const fileOutput = files!.output as { stdout: string; stderr: string };
      expect(fileOutput.stderr).to.match(/\/etc\/shadow: No such file or directory/);
      expect(fileOutput.stdout.split('\n')).to.not.include('home');
      expect(fileOutput.stdout).to.include('RUNYARD_RUN_KEY=ry_ek_').and.include('RUNYARD_API_URL=');
      expect(fileOutput.stdout).not.to.match(/DATABASE_URL|RUNYARD_SECRET|OPENAI_API_KEY|REDIS_URL/);
      expect(fileOutput.stdout).to.include('host=workspace');
      expect((network!.output as { stdout: string }).stdout.trim()).to.equal('refused');
      expect((links!.output as { stdout: string }).stdout).to.equal('linked\n');
      for (const refused of [dotdot, symlink, writeOut, absolute])
        expect(refused!.error, JSON.stringify(refused)).to.match(/leaves the workspace|out of the workspace|outside the workspace/);
    } finally {
      listener.close();
    }
  });

  it('holds each command to its limits: a fork bomb, a disk filler, a memory hog and a sleeper fail their own call, and the run goes on', async () => {
    const runId = await startRunOk(stack.api.app, alice.key, {
      prompt: steps(
        ['exec', { command: 'bash -c ":(){ :|:& };:"; echo survived' }],
        ['exec', { command: 'yes > big; ls -l big | wc -l' }],
        ['exec', { command: '/opt/runyard/node -e "const b = []; for (;;) b.push(Buffer.alloc(16 * 1024 * 1024, 1))"' }],
        ['exec', { command: 'sleep 60', timeoutMs: 500 }],
        ['exec', { command: 'yes hello | head -c 200000' }],
        ['exec', { command: 'echo still fine' }],
      ),
      workspace: true,
    });
    const [bomb, filler, hog, sleeper, chatty, fine] = await runToEnd(runId);
    expect((bomb!.output as { stdout: string }).stdout).to.include('survived');
    expect((filler!.output as { stderr: string }).stderr).to.match(/File size limit exceeded/);
    expect((hog!.output as { exitCode: number }).exitCode).to.not.equal(0);
    expect(sleeper!.output).to.include({ timedOut: true });
    expect(chatty!.output).to.include({ truncated: true });
    expect((chatty!.output as { stdout: string }).stdout.length).to.equal(65_536);
    expect(fine!.output).to.include({ exitCode: 0, stdout: 'still fine\n' });
  });

  it('undoes a call that grows the workspace past WORKSPACE_MAX_BYTES, and the next call finds it as it was', async () => {
    const runId = await startRunOk(stack.api.app, alice.key, {
      prompt: steps(
        ['exec', { command: 'echo kept > kept.txt' }],
        ['exec', { command: 'for i in 1 2 3 4 5; do head -c 2000000 /dev/zero > fill$i; done; echo filled' }],
        ['exec', { command: 'ls' }],
      ),
      workspace: true,
    });
    const [, filled, listed] = await runToEnd(runId);
    expect(filled!.error).to.match(/over WORKSPACE_MAX_BYTES/);
    expect((listed!.output as { stdout: string }).stdout).to.equal('kept.txt\n');
  });

  it('clones an allowlisted repository into a new workspace (a real git daemon), at a ref; the run works in it', async () => {
    const runId = await startRunOk(stack.api.app, alice.key, {
      prompt: steps(['exec', { command: 'python3 main.py 2>/dev/null || cat main.py; git log --oneline | wc -l' }], ['list_files', {}]),
      workspace: { repo: { url: repos.url('demo.git'), ref: 'v1' } },
    });
    const [ran, listed] = await runToEnd(runId);
    expect(ran!.output!.exitCode).to.equal(0);
    expect(ran!.output!.stdout as string).to.include('from the repository');
    expect((listed!.output!.entries as { path: string }[]).map((entry) => entry.path)).to.include.members(['/workspace/README.md', '/workspace/main.py']);
  });

  it('refuses what cannot be: a tool named like a built-in, a repository off the allowlist; a clone that fails fails the run and leaves nothing', async () => {
    const reserved = await postRun(stack.api.app, alice.key, {
      prompt: 'x',
      tools: [{ name: 'exec', inputSchema: { type: 'object' }, url: 'http://127.0.0.1:1/x' }],
    });
    expect([reserved.status, reserved.body.error]).to.deep.equal([400, 'tool_name_reserved']);
    const offList = await postRun(stack.api.app, alice.key, { prompt: 'x', workspace: { repo: { url: 'https://example.com/repo.git' } } });
    expect([offList.status, offList.body.error]).to.deep.equal([400, 'workspace_repo_not_allowed']);
    const runId = await startRunOk(stack.api.app, alice.key, { prompt: 'x', workspace: { repo: { url: 'http://127.0.0.1:1/nothing.git' } } });
    const run = await waitForRunStatus(stack.api.deps, runId, ['failed'], 60_000);
    expect(run.errorCode).to.equal('workspace_unavailable');
    expect(run.errorMessage).to.match(/git clone/);
    expect(await stack.api.deps.db.workspace.count({ where: { sessionId: run.sessionId } }), 'no workspace left').to.equal(0);
    expect(await stack.api.deps.db.blob.count({ where: { key: { startsWith: `workspaces/${run.sessionId}/` } } }), 'no content left').to.equal(0);
    const keys = await stack.api.deps.db.apiKey.findMany({ where: { runId } });
    expect(keys.every((key) => key.revokedAt !== null)).to.equal(true);
  });

  it('says workspaces_unavailable, with the fix, where the server has no sandbox', async () => {
    const off = startApi({ WORKSPACE_DRIVER: 'off' });
    try {
      const bob = await createAccount(off.deps.db);
      const res = await postRun(off.app, bob.key, { prompt: 'x', workspace: true });
      expect([res.status, res.body.error]).to.deep.equal([400, 'workspaces_unavailable']);
      expect(res.body.fix).to.match(/bubblewrap/);
    } finally {
      await off.close();
    }
  });
});
