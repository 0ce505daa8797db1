import { randomUUID } from 'node:crypto';
import express from 'express';
import helmet from 'helmet';

/**
 * The HTTP floor: express with helmet (its defaults; the api changes two CSP directives) and the
 * api's JSON body parsing, answering the run POST with 202 and doing nothing else. What the api
 * costs per POST above this is runyard's own work.
 */
const port = Number(process.argv[2]);
const app = express();
app.use(helmet());
app.disable('x-powered-by');
app.use(express.json({ limit: '1mb', strict: true }));
app.post('/api/chat/runs', (req, res) => {
  if (!req.get('authorization')) return void res.status(401).end();
  const prompt: unknown = req.body?.prompt;
  res
    .status(202)
    .location('/api/chat/runs/x')
    .json({ runId: randomUUID(), chatId: randomUUID(), sessionId: randomUUID(), status: 'queued', length: String(prompt).length });
});
app.listen(port, '127.0.0.1', () => process.stdout.write('ready\n'));
