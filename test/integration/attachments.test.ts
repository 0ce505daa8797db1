import { createHash } from 'node:crypto';
import { expect } from 'chai';
import request from 'supertest';
import { updateAccountSettings } from '../../shared/accounts/accountSettings.js';
import { pruneExpiredChats } from '../../shared/runs/retention.js';
import { createAccount, type TestAccount } from '../support/factories.js';
import { ELF_EXECUTABLE, makePdf, makePng, binaryBody } from '../support/files.js';
import { postRun, startRunOk, waitForRunStatus } from '../support/runs.js';
import { startStack, type Stack } from '../support/stack.js';

const sha256 = (bytes: Buffer) => createHash('sha256').update(bytes).digest('hex');
const MIB = 1_048_576;

describe('attachments: files and images in messages (SPEC section 20)', function () {
  this.timeout(90_000);
  let stack: Stack;
  before(async () => {
    stack = await startStack();
  });
  after(() => stack.close());

  const upload = (account: TestAccount, bytes: Buffer, mediaType: string, filename?: string) =>
    request(stack.api.app)
      .post(`/api/files${filename ? `?filename=${encodeURIComponent(filename)}` : ''}`)
      .set(account.auth)
      .set('content-type', mediaType)
      .send(bytes);
  const uploadOk = async (account: TestAccount, bytes: Buffer, mediaType: string, filename?: string) => {
    const res = await upload(account, bytes, mediaType, filename);
    expect(res.status, JSON.stringify(res.body)).to.equal(201);
    return res.body as { fileId: string; mediaType: string; sizeBytes: number; sha256: string };
  };
  const fileMessage = (text: string, ...files: { fileId: string; mediaType: string; filename?: string }[]) => ({
    messages: [
      {
        role: 'user',
        parts: [
          ...files.map((f) => ({ type: 'file', mediaType: f.mediaType, url: `runyard:file/${f.fileId}`, ...(f.filename ? { filename: f.filename } : {}) })),
          { type: 'text', text },
        ],
      },
    ],
  });
  const blobCount = async (fileId: string) =>
    Number((await stack.api.deps.db.$queryRaw<{ n: bigint }[]>`SELECT count(*) AS n FROM blobs WHERE key LIKE ${`files/${fileId}/%`}`)[0]!.n);

  it('stores an upload as it arrives and gives it back byte for byte, with its type checked by content', async () => {
    const png = makePng(64, 48);
    const stored = await uploadOk(stack.alice, png, 'image/png', 'chart.png');
    expect(stored).to.include({ mediaType: 'image/png', sizeBytes: png.length, sha256: sha256(png) });
    const meta = await request(stack.api.app).get(`/api/files/${stored.fileId}`).set(stack.alice.auth);
    expect(meta.body).to.include({ filename: 'chart.png', width: 64, height: 48 });
    const content = await request(stack.api.app).get(`/api/files/${stored.fileId}/content`).set(stack.alice.auth).buffer(true).parse(binaryBody);
    expect(content.headers['content-type']).to.equal('image/png');
    expect(sha256(content.body as Buffer)).to.equal(sha256(png));

    // Several chunks (1 MiB each), multipart, from a form as a browser sends it.
    const big = makePng(32, 32, { padBytes: 3 * MIB + 12_345 });
    const form = await request(stack.api.app).post('/api/files').set(stack.alice.auth).attach('file', big, { filename: 'big.png', contentType: 'image/png' });
    expect(form.status, JSON.stringify(form.body)).to.equal(201);
    expect(form.body).to.include({ sizeBytes: big.length, sha256: sha256(big), filename: 'big.png' });
    expect(await blobCount(form.body.fileId)).to.equal(4);
    const back = await request(stack.api.app).get(`/api/files/${form.body.fileId}/content`).set(stack.alice.auth).buffer(true).parse(binaryBody);
    expect(sha256(back.body as Buffer)).to.equal(sha256(big));

    const other = await createAccount(stack.api.deps.db);
    expect((await request(stack.api.app).get(`/api/files/${stored.fileId}`).set(other.auth)).status, 'another account’s file').to.equal(404);
  });

  it('refuses an executable called image/png, an unsupported type, a file over FILE_MAX_BYTES and an account over its quota — leaving nothing stored', async () => {
    const exe = await upload(stack.alice, ELF_EXECUTABLE, 'image/png', 'cat.png');
    expect([exe.status, exe.body.error]).to.deep.equal([400, 'attachment_type_mismatch']);
    const binaryText = await upload(stack.alice, ELF_EXECUTABLE, 'text/plain');
    expect([binaryText.status, binaryText.body.error]).to.deep.equal([400, 'attachment_type_mismatch']);
    const zip = await upload(stack.alice, Buffer.from('PK\x03\x04rest'), 'application/zip');
    expect([zip.status, zip.body.error]).to.deep.equal([415, 'attachment_type_unsupported']);
    const huge = await upload(stack.alice, makePng(8, 8, { padBytes: 21 * MIB }), 'image/png');
    expect([huge.status, huge.body.error]).to.deep.equal([413, 'file_too_large']);

    const small = await createAccount(stack.api.deps.db);
    const quota = await updateAccountSettings(stack.api.deps, { id: small.accountId, name: small.accountId }, { fileQuotaMb: 2 });
    expect(quota).to.include({ fileQuotaMb: 2, fileQuotaIsDefault: false });
    await uploadOk(small, makePng(8, 8, { padBytes: MIB }), 'image/png');
    const over = await upload(small, makePng(8, 8, { padBytes: MIB + 1 }), 'image/png');
    expect([over.status, over.body.error]).to.deep.equal([413, 'file_quota_exceeded']);
    const [{ n }] = await stack.api.deps.db.$queryRaw<[{ n: bigint }]>`
      SELECT count(*) AS n FROM blobs b WHERE b.key LIKE 'files/%' AND NOT EXISTS (SELECT 1 FROM files f WHERE f.id::text = split_part(b.key, '/', 2))`;
    expect(Number(n), 'chunks of refused uploads').to.equal(0);
  });

  it('sends a PNG and a PDF to OpenAI and to Anthropic in each one’s own format, byte for byte, and a text file as text', async () => {
    const png = makePng(40, 30, { seed: 7 });
    const pdf = makePdf('runyard attachments');
    const image = await uploadOk(stack.alice, png, 'image/png', 'plot.png');
    const doc = await uploadOk(stack.alice, pdf, 'application/pdf', 'report.pdf');
    const notes = await uploadOk(stack.alice, Buffer.from('# Notes\nthe launch is on Tuesday\n'), 'text/markdown', 'notes.md');
    for (const model of ['openai/gpt-4o-mini', 'anthropic/claude-haiku-4-5']) {
      const marker = `describe these ${model}`;
      const runId = await startRunOk(stack.api.app, stack.alice.key, { model, ...fileMessage(marker, image, doc, notes) });
      await waitForRunStatus(stack.api.deps, runId, ['completed']);
      const sent = stack.fake.requests.filter((r) => JSON.stringify(r.body).includes(marker));
      expect(sent, model).to.have.length(1);
      expect(sent[0]!.files, model).to.deep.equal([
        { kind: 'image', mediaType: 'image/png', sha256: sha256(png), bytes: png.length },
        { kind: 'pdf', mediaType: 'application/pdf', sha256: sha256(pdf), bytes: pdf.length },
        { kind: 'text', text: '[notes.md]\n# Notes\nthe launch is on Tuesday\n' },
      ]);
    }
  });

  it('takes data: URLs as the AI SDK sends them, and local/echo answers a line per attachment', async () => {
    const png = makePng(10, 10, { seed: 3 });
    const res = await postRun(stack.api.app, stack.alice.key, {
      messages: [
        {
          role: 'user',
          parts: [
            { type: 'file', mediaType: 'image/png', filename: 'dot.png', url: `data:image/png;base64,${png.toString('base64')}` },
            { type: 'text', text: 'what is this' },
          ],
        },
      ],
    });
    expect(res.status, JSON.stringify(res.body)).to.equal(202);
    await waitForRunStatus(stack.api.deps, res.body.runId, ['completed']);
    const history = await request(stack.api.app).get(`/api/chats/${res.body.chatId}/messages`).set(stack.alice.auth);
    const [question, answer] = history.body.messages;
    const part = question.parts[0];
    expect(part).to.include({ type: 'file', mediaType: 'image/png', filename: 'dot.png' });
    const fileId = /\/api\/files\/([0-9a-f-]{36})\/content$/.exec(part.url)?.[1];
    expect(fileId, part.url).to.be.a('string');
    expect(
      answer.parts
        .filter((p: { type: string }) => p.type === 'text')
        .map((p: { text: string }) => p.text)
        .join(''),
    ).to.equal(`[file dot.png image/png ${png.length} ${sha256(png)}]\nwhat is this`);

    // A page reads it with a stream token of the run (an <img> sends no header).
    const token = (await request(stack.api.app).post(`/api/chat/runs/${res.body.runId}/stream-token`).set(stack.alice.auth)).body.token as string;
    const viaToken = await request(stack.api.app).get(`${part.url}?token=${token}`).buffer(true).parse(binaryBody);
    expect(viaToken.status).to.equal(200);
    expect(sha256(viaToken.body as Buffer)).to.equal(sha256(png));
    const unrelated = await uploadOk(stack.alice, makePng(4, 4), 'image/png');
    expect((await request(stack.api.app).get(`/api/files/${unrelated.fileId}/content?token=${token}`)).status, 'a file the run did not use').to.equal(404);
  });

  it('refuses, before any run exists, a foreign file, an image over Anthropic’s limits and a PDF to a model that reads none', async () => {
    const runsBefore = await stack.api.deps.db.run.count();
    const bob = await createAccount(stack.api.deps.db);
    const bobs = await uploadOk(bob, makePng(8, 8), 'image/png');
    const foreign = await postRun(stack.api.app, stack.alice.key, fileMessage('x', bobs));
    expect([foreign.status, foreign.body.error]).to.deep.equal([404, 'file_not_found']);

    const heavy = await uploadOk(stack.alice, makePng(16, 16, { padBytes: 6_000_000 }), 'image/png', 'heavy.png');
    const tooHeavy = await postRun(stack.api.app, stack.alice.key, { model: 'anthropic/claude-haiku-4-5', ...fileMessage('x', heavy) });
    expect([tooHeavy.status, tooHeavy.body.error]).to.deep.equal([400, 'attachment_too_large']);
    expect(tooHeavy.body.detail ?? tooHeavy.body.message).to.include('messages[0].parts[0]');
    const wide = await uploadOk(stack.alice, makePng(9_000, 2), 'image/png');
    const tooWide = await postRun(stack.api.app, stack.alice.key, { model: 'anthropic/claude-haiku-4-5', ...fileMessage('x', wide) });
    expect([tooWide.status, tooWide.body.error]).to.deep.equal([400, 'attachment_too_large']);
    // The same heavy image is within OpenAI's limit.
    expect((await postRun(stack.api.app, stack.alice.key, { model: 'openai/gpt-4o-mini', ...fileMessage('heavy ok', heavy) })).status).to.equal(202);

    const doc = await uploadOk(stack.alice, makePdf('x'), 'application/pdf');
    const unread = await postRun(stack.api.app, stack.alice.key, { model: 'anthropic/claude-3-5-haiku-latest', ...fileMessage('x', doc) });
    expect([unread.status, unread.body.error]).to.deep.equal([400, 'model_cannot_read_attachment']);
    expect(await stack.api.deps.db.run.count()).to.equal(runsBefore + 1);

    // A chat message is checked the same way.
    const chat = await postRun(stack.api.app, stack.alice.key, { prompt: 'hello' });
    await waitForRunStatus(stack.api.deps, chat.body.runId, ['completed']);
    const message = await request(stack.api.app)
      .post(`/api/chats/${chat.body.chatId}/messages`)
      .set(stack.alice.auth)
      .send({ model: 'anthropic/claude-3-5-haiku-latest', message: fileMessage('x', doc).messages[0] });
    expect([message.status, message.body.error]).to.deep.equal([400, 'model_cannot_read_attachment']);
  });

  it('erasing a chat deletes its files and their bytes but for one another chat still uses; an unattached upload is gone after a day', async () => {
    const own = await uploadOk(stack.alice, makePng(8, 8, { seed: 1 }), 'image/png');
    const shared = await uploadOk(stack.alice, makePng(8, 8, { seed: 2 }), 'image/png');
    const first = await startRunOk(stack.api.app, stack.alice.key, fileMessage('one', own, shared));
    const second = await startRunOk(stack.api.app, stack.alice.key, fileMessage('two', shared));
    const [a, b] = await Promise.all([waitForRunStatus(stack.api.deps, first, ['completed']), waitForRunStatus(stack.api.deps, second, ['completed'])]);
    expect((await request(stack.api.app).delete(`/api/chats/${a.chatId}`).set(stack.alice.auth)).status).to.equal(202);
    expect((await request(stack.api.app).get(`/api/files/${own.fileId}`).set(stack.alice.auth)).status).to.equal(404);
    expect(await blobCount(own.fileId)).to.equal(0);
    expect((await request(stack.api.app).get(`/api/files/${shared.fileId}`).set(stack.alice.auth)).status).to.equal(200);
    expect((await request(stack.api.app).delete(`/api/chats/${b.chatId}`).set(stack.alice.auth)).status).to.equal(202);
    expect(await blobCount(shared.fileId)).to.equal(0);

    const orphan = await uploadOk(stack.alice, makePng(8, 8, { seed: 9 }), 'image/png');
    const deps = { db: stack.api.deps.db, redis: stack.api.deps.redis, admission: stack.api.deps.admission, config: stack.api.deps.config };
    expect((await pruneExpiredChats(deps)).filesDeleted, 'a fresh upload stays').to.equal(0);
    const tomorrow = new Date(Date.now() + 86_400_000 + 60_000);
    expect((await pruneExpiredChats({ ...deps, now: tomorrow })).filesDeleted).to.be.at.least(1);
    expect((await request(stack.api.app).get(`/api/files/${orphan.fileId}`).set(stack.alice.auth)).status).to.equal(404);
    expect(await blobCount(orphan.fileId)).to.equal(0);

    const gone = await uploadOk(stack.alice, makePng(8, 8, { seed: 10 }), 'image/png');
    expect((await request(stack.api.app).delete(`/api/files/${gone.fileId}`).set(stack.alice.auth)).status).to.equal(204);
    expect(await blobCount(gone.fileId)).to.equal(0);
    expect((await postRun(stack.api.app, stack.alice.key, fileMessage('x', gone))).status, 'a deleted file').to.equal(404);
  });
});
