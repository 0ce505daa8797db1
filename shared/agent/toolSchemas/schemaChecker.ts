import { Worker } from 'node:worker_threads';
import { isPlainSchema, schemaOutOfBounds } from './bounds.js';
import { compileAll, mismatchOf } from './compiler.js';

export type SchemaRequest = { id: number; op: 'compile'; schemas: string[] } | { id: number; op: 'validate'; schema: string; input: unknown };
export type SchemaAnswer =
  | { id: number; ok: true; failure: { index: number; reason: string } | null }
  | { id: number; ok: true; mismatch: string | null }
  | { id: number; ok: false; error: string };

/** Why one of a list of schemas was refused: `index` is the schema's place in the list, null when the list as a whole took too long. */
export type SchemaRefusal = { index: number | null; reason: string };

type KnownSchema = { outOfBounds: string | null; json: string; plain: boolean };

type Pending = { request: SchemaRequest; settle: (answer: SchemaAnswer | { id: number; ok: false; error: string; timedOut: true }) => void };

const THREAD_ENTRY = `import('tsx/esm/api').then(({ register }) => { register(); return import(${JSON.stringify(new URL('./schemaThread.ts', import.meta.url).href)}); });`;

/**
 * Compiles and checks tool input schemas (a caller's or an MCP server's: untrusted) off the event
 * loop. A schema is first held to SCHEMA_BOUNDS (size, depth, nodes, array items); then one thread
 * compiles and validates, one request at a time, with RE2 for patterns. A request that runs past
 * `timeoutMs` ends the thread (the only way to stop synchronous work): that request is refused as
 * too complex, the others go to a new thread. So no schema can hold an api or worker's event loop,
 * and none can hold the thread longer than `timeoutMs`.
 *
 * The exception is a plain schema (isPlainSchema: small, without references, combinators or
 * patterns): it is compiled and checked in the process, where its compile is bounded by its size
 * and its check is linear in the input — a thread's round trip saved per tool call and per POST
 * with tools. What the checker learned of a schema object is kept with it (its JSON text, bounds
 * and plainness), so a run's every step does not walk and serialize its tools again.
 */
export class SchemaChecker {
  private thread: Worker | undefined;
  private ready = false;
  private readonly queue: Pending[] = [];
  private watchdog: NodeJS.Timeout | undefined;
  private nextId = 1;
  private closed = false;
  private readonly known = new WeakMap<object, KnownSchema>();

  constructor(private readonly timeoutMs: number) {}

  /** The first schema of `schemas` that is out of bounds or does not compile, or null when all compile. */
  async compile(schemas: readonly Record<string, unknown>[]): Promise<SchemaRefusal | null> {
    const known = schemas.map((schema) => this.knownSchema(schema));
    const outOfBounds = known.findIndex((schema) => schema.outOfBounds);
    if (outOfBounds >= 0) return { index: outOfBounds, reason: known[outOfBounds]!.outOfBounds! };
    if (schemas.length === 0) return null;
    const texts = known.map((schema) => schema.json);
    if (known.every((schema) => schema.plain)) return compileAll(texts);
    const answer = await this.send({ id: this.nextId++, op: 'compile', schemas: texts });
    if (!answer.ok) return { index: schemas.length === 1 ? 0 : null, reason: this.failureReason(answer) };
    return 'failure' in answer ? answer.failure : null;
  }

  /** Why `input` does not match `schema` (including a schema that cannot be checked), or null when it does. */
  async mismatch(schema: Record<string, unknown>, input: unknown): Promise<string | null> {
    const known = this.knownSchema(schema);
    if (known.outOfBounds) return `its input schema cannot be checked: ${known.outOfBounds}`;
    if (known.plain) {
      try {
        return mismatchOf(known.json, input);
      } catch (err) {
        return `its input could not be checked: ${(err as Error).message}`;
      }
    }
    const answer = await this.send({ id: this.nextId++, op: 'validate', schema: known.json, input });
    if (!answer.ok) return `its input could not be checked: ${this.failureReason(answer)}`;
    return 'mismatch' in answer ? answer.mismatch : null;
  }

  private knownSchema(schema: Record<string, unknown>): KnownSchema {
    let known = this.known.get(schema);
    if (!known) {
      const outOfBounds = schemaOutOfBounds(schema);
      known = { outOfBounds, json: outOfBounds ? '' : JSON.stringify(schema), plain: !outOfBounds && isPlainSchema(schema) };
      this.known.set(schema, known);
    }
    return known;
  }

  async close(): Promise<void> {
    this.closed = true;
    clearTimeout(this.watchdog);
    for (const pending of this.queue.splice(0)) pending.settle({ id: pending.request.id, ok: false, error: 'the schema checker is shutting down' });
    const thread = this.thread;
    this.thread = undefined;
    await thread?.terminate();
  }

  private failureReason(answer: { error: string; timedOut?: true }): string {
    return answer.timedOut ? `checking it took longer than ${this.timeoutMs} ms (simplify the schema)` : answer.error;
  }

  private send(request: SchemaRequest): Promise<SchemaAnswer | { id: number; ok: false; error: string; timedOut: true }> {
    if (this.closed) return Promise.resolve({ id: request.id, ok: false, error: 'the schema checker is shut down' });
    return new Promise((settle) => {
      this.queue.push({ request, settle });
      const thread = this.threadNow();
      thread.ref();
      if (this.ready) {
        thread.postMessage(request);
        if (this.queue.length === 1) this.armWatchdog();
      }
    });
  }

  private threadNow(): Worker {
    if (this.thread) return this.thread;
    // The thread loads TypeScript with tsx, as the process does (a thread does not inherit the
    // process's module hooks): its entry registers tsx, then imports the thread module.
    const thread = new Worker(THREAD_ENTRY, { eval: true });
    this.thread = thread;
    this.ready = false;
    thread.on('message', (message: SchemaAnswer | 'ready') => {
      if (thread !== this.thread) return;
      if (message === 'ready') {
        this.ready = true;
        for (const pending of this.queue) thread.postMessage(pending.request);
        if (this.queue.length > 0) this.armWatchdog();
        return;
      }
      const head = this.queue[0];
      if (!head || head.request.id !== message.id) return;
      this.queue.shift();
      clearTimeout(this.watchdog);
      head.settle(message);
      if (this.queue.length > 0) this.armWatchdog();
      else thread.unref();
    });
    const lost = (error: string) => {
      if (thread !== this.thread) return;
      if (this.ready) return this.replaceThread({ error, timedOut: false });
      // It never started (a broken install): refuse what waits rather than start threads in a loop.
      this.thread = undefined;
      for (const pending of this.queue.splice(0)) pending.settle({ id: pending.request.id, ok: false, error });
    };
    thread.on('error', (err) => lost(`the schema thread failed: ${err.message}`));
    thread.on('exit', (code) => lost(`the schema thread exited (code ${code})`));
    return thread;
  }

  private armWatchdog(): void {
    clearTimeout(this.watchdog);
    this.watchdog = setTimeout(() => this.replaceThread({ error: 'timed out', timedOut: true }), this.timeoutMs);
  }

  /** Ends the current thread: the request it was on is refused, the rest go to a new thread. */
  private replaceThread(failure: { error: string; timedOut: boolean }): void {
    clearTimeout(this.watchdog);
    const old = this.thread;
    this.thread = undefined;
    this.ready = false;
    void old?.terminate();
    const head = this.queue.shift();
    if (head) head.settle({ id: head.request.id, ok: false, error: failure.error, ...(failure.timedOut ? { timedOut: true as const } : {}) });
    if (this.queue.length > 0 && !this.closed) this.threadNow().ref();
  }
}
