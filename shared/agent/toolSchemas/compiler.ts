import { Ajv, type ValidateFunction } from 'ajv';
import { RE2JS } from 're2js';

/**
 * The JSON Schema engine of tool inputs: ajv, with every `pattern` and `patternProperties` key run by
 * RE2 (re2js: linear time in the input, whatever the pattern) instead of the backtracking RegExp. RE2
 * has no backreferences or lookaround: a schema using them does not compile, and says why.
 * It runs inside the schema thread (schemaThread.ts); on a process's main event loop only for plain
 * schemas (bounds.ts, isPlainSchema), whose compile and check are bounded.
 */
function re2(pattern: string) {
  let compiled: RE2JS;
  try {
    compiled = RE2JS.compile(pattern);
  } catch (err) {
    throw new Error(
      `the pattern ${JSON.stringify(pattern)} is not supported: patterns are matched with RE2 syntax (no backreferences or lookaround): ${(err as Error).message}`,
      { cause: err },
    );
  }
  // ajv keys its compiled patterns by the engine's toString(): it must name the pattern.
  return { test: (input: string) => compiled.test(input), toString: () => `/${pattern}/` };
}
re2.code = 're2js';

const ajv = new Ajv({ strict: false, allErrors: true, logger: false, code: { regExp: re2 } });
const compiled = new Map<string, ValidateFunction>();
const MAX_COMPILED = 1_000;

/** The validator of a schema (by its JSON text), compiled once per thread; throws if the schema is invalid. */
export function validatorOf(schemaJson: string): ValidateFunction {
  let validate = compiled.get(schemaJson);
  if (validate) {
    compiled.delete(schemaJson);
  } else {
    validate = ajv.compile(JSON.parse(schemaJson) as object);
    if (compiled.size >= MAX_COMPILED) compiled.delete(compiled.keys().next().value!);
  }
  compiled.set(schemaJson, validate);
  return validate;
}

/** The most errors a mismatch names (an input with thousands of stray keys would otherwise make a text as long). */
export const MAX_MISMATCH_ERRORS = 20;

/** Why `input` does not match the schema, or null when it does. */
export function mismatchOf(schemaJson: string, input: unknown): string | null {
  const validate = validatorOf(schemaJson);
  if (validate(input)) return null;
  const errors = validate.errors ?? [];
  const more = errors.length - MAX_MISMATCH_ERRORS;
  return ajv.errorsText(errors.slice(0, MAX_MISMATCH_ERRORS), { dataVar: 'input' }) + (more > 0 ? ` (and ${more} more)` : '');
}

/** Compiles each schema (JSON text): the first that does not compile and why, or null when all do. */
export function compileAll(schemas: string[]): { index: number; reason: string } | null {
  for (const [index, schema] of schemas.entries()) {
    try {
      validatorOf(schema);
    } catch (err) {
      return { index, reason: (err as Error).message };
    }
  }
  return null;
}
