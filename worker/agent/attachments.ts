import type { BlobStore } from '../../shared/blobs/blobStore.js';
import type { Db } from '../../shared/infra/db.js';
import type { Metrics } from '../../shared/infra/metrics.js';
import { fileChunks, filesOf } from '../../shared/files/fileStore.js';
import type { Attachment, ModelMessage } from '../providers/types.js';

/**
 * Attachment bytes for model requests (SPEC section 20). A model call whose messages carry files
 * reads them from the blob store, chunk by chunk, just before it is sent, and lets go of them when
 * it ends; a worker holds at most ATTACHMENT_BYTES_IN_FLIGHT_MB of them at once, so twenty runs
 * with large attachments wait their turn instead of taking the worker's memory (a call whose
 * attachments alone exceed the budget goes when nothing else holds any).
 */
export class AttachmentLoader {
  private held = 0;
  private readonly waiting: { bytes: number; grant: () => void }[] = [];

  constructor(
    private readonly deps: { db: Db; blobs: BlobStore; metrics: Pick<Metrics, 'attachmentBytesSent'> },
    private readonly budgetBytes: number,
  ) {}

  /**
   * The messages with their attachments filled in: each file's size and digest, and (`withBytes`)
   * its content; a file deleted since it was attached is marked `missing`. `release` must be
   * called once the call has ended.
   */
  async load(accountId: string, messages: ModelMessage[], withBytes: boolean, signal: AbortSignal): Promise<{ messages: ModelMessage[]; release: () => void }> {
    const ids = messages.flatMap((message) => (message.role === 'user' ? (message.attachments ?? []).map((a) => a.fileId) : []));
    if (ids.length === 0) return { messages, release: () => {} };
    const files = await filesOf(this.deps.db, accountId, [...new Set(ids)]);
    const bytes = withBytes ? [...files.values()].reduce((sum, file) => sum + file.sizeBytes, 0) : 0;
    const granted = await this.acquire(bytes, signal);
    let released = false;
    const release = () => {
      if (released) return;
      released = true;
      this.free(granted);
    };
    try {
      const contents = new Map<string, Buffer>();
      if (withBytes) {
        for (const file of files.values()) {
          const chunks: Buffer[] = [];
          for await (const chunk of fileChunks(this.deps.blobs, file)) chunks.push(chunk);
          contents.set(file.id, Buffer.concat(chunks));
          signal.throwIfAborted();
        }
        this.deps.metrics.attachmentBytesSent.inc(bytes);
      }
      const filled = messages.map((message): ModelMessage => {
        if (message.role !== 'user' || !message.attachments?.length) return message;
        return {
          ...message,
          attachments: message.attachments.map((attachment): Attachment => {
            const file = files.get(attachment.fileId);
            if (!file) return { ...attachment, missing: true };
            return {
              ...attachment,
              sizeBytes: file.sizeBytes,
              sha256: file.sha256,
              filename: attachment.filename ?? file.filename,
              data: contents.get(file.id),
            };
          }),
        };
      });
      return { messages: filled, release };
    } catch (err) {
      release();
      throw err;
    }
  }

  /** Waits until `bytes` fit in the budget (all of it, for a call larger than the budget); answers what was taken. */
  private async acquire(bytes: number, signal: AbortSignal): Promise<number> {
    if (bytes === 0) return 0;
    const take = Math.min(bytes, this.budgetBytes);
    if (this.held + take <= this.budgetBytes && this.waiting.length === 0) {
      this.held += take;
      return take;
    }
    await new Promise<void>((resolve, reject) => {
      const entry = {
        bytes: take,
        grant: () => {
          signal.removeEventListener('abort', onAbort);
          resolve();
        },
      };
      const onAbort = () => {
        this.waiting.splice(this.waiting.indexOf(entry), 1);
        this.grantWaiting();
        reject(signal.reason);
      };
      signal.addEventListener('abort', onAbort, { once: true });
      this.waiting.push(entry);
    });
    return take;
  }

  private free(bytes: number): void {
    this.held -= bytes;
    this.grantWaiting();
  }

  /** First come, first served: the head of the line goes as soon as it fits. */
  private grantWaiting(): void {
    while (this.waiting.length > 0 && this.held + this.waiting[0]!.bytes <= this.budgetBytes) {
      const next = this.waiting.shift()!;
      this.held += next.bytes;
      next.grant();
    }
  }
}
