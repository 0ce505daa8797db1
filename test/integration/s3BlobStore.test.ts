import { createHash } from 'node:crypto';
import { ListObjectsV2Command, S3Client } from '@aws-sdk/client-s3';
import { expect } from 'chai';
import request from 'supertest';
import { findExecutable } from '../../shared/workspaces/workspaceRequest.js';
import { makePdf, makePng, binaryBody } from '../support/files.js';
import { waitFor } from '../support/harness.js';
import { startRunOk, waitForRunStatus } from '../support/runs.js';
import { startS3Server, type S3Server } from '../support/s3Server.js';
import { startStack, type Stack } from '../support/stack.js';

const sha256 = (bytes: Buffer) => createHash('sha256').update(bytes).digest('hex');

describe('BLOB_STORE=s3://…: workspaces and attachments in S3-compatible storage (SPEC sections 18 and 20)', function () {
  this.timeout(120_000);
  let s3: S3Server;
  let stack: Stack;
  let client: S3Client;

  before(async () => {
    s3 = await startS3Server();
    stack = await startStack(s3.env);
    client = new S3Client({
      region: 'us-east-1',
      endpoint: s3.endpoint,
      forcePathStyle: true,
      credentials: { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' },
    });
  });
  after(async () => {
    client?.destroy();
    await stack?.close();
    await s3?.close();
  });

  /** The keys in the bucket under `prefix` (the store's own prefix included). */
  const keysUnder = async (prefix: string) => {
    const keys: string[] = [];
    let token: string | undefined;
    do {
      const page = await client.send(new ListObjectsV2Command({ Bucket: s3.bucket, Prefix: `blobs/${prefix}`, ContinuationToken: token }));
      keys.push(...(page.Contents ?? []).map((object) => object.Key!));
      token = page.IsTruncated ? page.NextContinuationToken : undefined;
    } while (token);
    return keys;
  };

  it('keeps an upload in the bucket in chunks, sends it to the provider byte for byte, and erases it with its chat', async () => {
    const png = makePng(64, 64, { seed: 4, padBytes: 2_500_000 });
    const pdf = makePdf('stored in S3');
    const upload = async (bytes: Buffer, mediaType: string) => {
      const res = await request(stack.api.app).post('/api/files').set(stack.alice.auth).set('content-type', mediaType).send(bytes);
      expect(res.status, JSON.stringify(res.body)).to.equal(201);
      return res.body as { fileId: string };
    };
    const image = await upload(png, 'image/png');
    const doc = await upload(pdf, 'application/pdf');
    expect(await keysUnder(`files/${image.fileId}/`)).to.have.length(3);
    expect(await stack.api.deps.db.blob.count({ where: { key: { startsWith: `files/${image.fileId}/` } } }), 'nothing in the Postgres store').to.equal(0);
    const back = await request(stack.api.app).get(`/api/files/${image.fileId}/content`).set(stack.alice.auth).buffer(true).parse(binaryBody);
    expect(sha256(back.body as Buffer)).to.equal(sha256(png));

    const runId = await startRunOk(stack.api.app, stack.alice.key, {
      model: 'anthropic/claude-haiku-4-5',
      messages: [
        {
          role: 'user',
          parts: [
            { type: 'file', mediaType: 'image/png', url: `runyard:file/${image.fileId}` },
            { type: 'file', mediaType: 'application/pdf', url: `runyard:file/${doc.fileId}` },
            { type: 'text', text: 'from the bucket' },
          ],
        },
      ],
    });
    const run = await waitForRunStatus(stack.api.deps, runId, ['completed']);
    const sent = stack.fake.requests.find((r) => JSON.stringify(r.body).includes('from the bucket'))!;
    expect(sent.files.map((file) => ('sha256' in file ? file.sha256 : null))).to.deep.equal([sha256(png), sha256(pdf)]);

    expect((await request(stack.api.app).delete(`/api/chats/${run.chatId}`).set(stack.alice.auth)).status).to.equal(202);
    expect(await keysUnder(`files/${image.fileId}/`)).to.deep.equal([]);
    expect(await keysUnder(`files/${doc.fileId}/`)).to.deep.equal([]);
  });

  it('keeps a workspace’s versions in the bucket: the next run reads what the last one wrote, and the chat’s erasure empties its prefix', async function () {
    if (!findExecutable('bwrap')) {
      if (process.env.CI === 'true') throw new Error('bwrap is missing: .ci/run should have installed the bubblewrap package');
      this.skip();
    }
    const first = await startRunOk(stack.api.app, stack.alice.key, {
      prompt: 'call write_file {"path":"notes/today.md","content":"kept in S3"}',
      workspace: { files: [{ path: 'README.md', content: 'hello' }] },
    });
    const done = await waitForRunStatus(stack.api.deps, first, ['completed', 'failed'], 60_000);
    expect(done.status, `${done.errorCode}: ${done.errorMessage}`).to.equal('completed');
    const chat = await stack.api.deps.db.chat.findUniqueOrThrow({ where: { id: done.chatId } });
    expect(await keysUnder(`workspaces/${chat.sessionId}/`)).to.have.length.greaterThan(0);
    // Another worker materialises it from the bucket: this one forgets its copy first.
    await stack.worker.close(1_000);
    const { startWorker } = await import('../support/harness.js');
    stack.worker = await startWorker(stack.api.prefix, { PUBLIC_BASE_URL: await stack.api.url(), ...stack.env });
    const second = await request(stack.api.app)
      .post(`/api/chats/${chat.id}/messages`)
      .set(stack.alice.auth)
      .send({ prompt: 'call read_file {"path":"notes/today.md"}' });
    expect(second.status, JSON.stringify(second.body)).to.equal(202);
    const read = await waitForRunStatus(stack.api.deps, second.body.runId, ['completed', 'failed'], 60_000);
    expect(read.status, `${read.errorCode}: ${read.errorMessage}`).to.equal('completed');
    const [step] = await stack.api.deps.db.runStep.findMany({ where: { runId: second.body.runId } });
    expect(JSON.stringify(step!.results)).to.include('kept in S3');

    expect((await request(stack.api.app).delete(`/api/chats/${chat.id}`).set(stack.alice.auth)).status).to.equal(202);
    await waitFor(async () => ((await keysUnder(`workspaces/${chat.sessionId}/`)).length === 0 ? true : null), { what: 'the workspace’s objects gone' });
  });
});
