import { escapeHtml as escape } from '../http/html.js';
import { createRequire } from 'node:module';
import path from 'node:path';
import express, { Router } from 'express';
import { ERROR_CATALOG } from '../http/errorCatalog.js';
import { buildOpenApiDocument } from '../http/openapi.js';

const require = createRequire(import.meta.url);
const swaggerUiDir = path.dirname(require.resolve('swagger-ui-dist/package.json'));

const DOCS_PAGE = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>runyard API</title>
<link rel="stylesheet" href="/docs/assets/swagger-ui.css">
<style>body{margin:0;font-family:sans-serif}#errors{max-width:1400px;margin:0 auto;padding:0 20px 40px}#errors td,#errors th{padding:4px 12px;text-align:left;border-bottom:1px solid #ddd}code{font-size:0.95em}</style>
</head><body>
<div id="swagger-ui"></div>
<section id="errors"><h2>Errors</h2>
<p>Every error answer is <code>{ "error", "detail", "fix", "docUrl", "requestId" }</code>; <code>error</code> is one of these stable codes.</p>
<table><tr><th>code</th><th>status</th><th>meaning</th></tr>
${ERROR_CATALOG.map(([code, status, meaning]) => `<tr id="error-${code}"><td><code>${code}</code></td><td>${status}</td><td>${escape(meaning)}</td></tr>`).join('\n')}
</table></section>
<script src="/docs/assets/swagger-ui-bundle.js"></script>
<script src="/docs/init.js"></script>
</body></html>`;

const INIT_SCRIPT = `window.ui = SwaggerUIBundle({ url: '/openapi.json', dom_id: '#swagger-ui', deepLinking: true });`;

export function docsRoutes(publicBaseUrl?: string): Router {
  const document = buildOpenApiDocument(publicBaseUrl);
  const router = Router();
  router.get('/openapi.json', (_req, res) => {
    res.json(document);
  });
  router.get('/docs', (_req, res) => {
    res.type('html').send(DOCS_PAGE);
  });
  router.get('/docs/init.js', (_req, res) => {
    res.type('application/javascript').send(INIT_SCRIPT);
  });
  router.use('/docs/assets', express.static(swaggerUiDir, { index: false, maxAge: '1h' }));
  return router;
}
