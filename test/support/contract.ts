import { Ajv2020 } from 'ajv/dist/2020.js';
import type { Response } from 'supertest';
import { buildOpenApiDocument } from '../../api/http/openapi.js';

/**
 * Validates a response against /openapi.json: the schema the document declares for that method,
 * path and status (JSON bodies). A drift between a route and its documented shape fails the test.
 */
const document = buildOpenApiDocument() as unknown as {
  paths: Record<string, Record<string, { responses: Record<string, { content?: Record<string, { schema: object }> }> }>>;
  components: object;
};
const ajv = new Ajv2020({ strict: false, allErrors: true, validateFormats: false });
const compiled = new Map<string, ReturnType<typeof ajv.compile>>();

export function expectMatchesContract(method: string, path: string, res: Response): void {
  const operation = document.paths[path]?.[method.toLowerCase()];
  if (!operation) throw new Error(`${method} ${path} is not in the OpenAPI document`);
  const response = operation.responses[String(res.status)];
  if (!response) throw new Error(`${method} ${path} answered ${res.status}, which the OpenAPI document does not declare`);
  const schema = response.content?.['application/json']?.schema;
  if (!schema) return;
  const key = `${method} ${path} ${res.status}`;
  let validate = compiled.get(key);
  if (!validate) {
    validate = ajv.compile({ ...schema, components: document.components });
    compiled.set(key, validate);
  }
  if (!validate(res.body))
    throw new Error(`${key}: the body does not match the contract: ${ajv.errorsText(validate.errors)}\n${JSON.stringify(res.body).slice(0, 500)}`);
}
