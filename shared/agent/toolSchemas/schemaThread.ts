import { parentPort } from 'node:worker_threads';
import { compileAll, mismatchOf } from './compiler.js';
import type { SchemaRequest, SchemaAnswer } from './schemaChecker.js';

/** The schema thread: compiles and validates one request at a time, for SchemaChecker (its watchdog ends it if one runs too long). */
parentPort!.on('message', (request: SchemaRequest) => {
  let answer: SchemaAnswer;
  try {
    if (request.op === 'compile') {
      answer = { id: request.id, ok: true, failure: compileAll(request.schemas) };
    } else {
      answer = { id: request.id, ok: true, mismatch: mismatchOf(request.schema, request.input) };
    }
  } catch (err) {
    answer = { id: request.id, ok: false, error: (err as Error).message };
  }
  parentPort!.postMessage(answer);
});
parentPort!.postMessage('ready');
