/**
 * What a tool's input schema may be, checked before anything compiles it: a caller's (or an MCP
 * server's) schema is hostile until bounded. The walk is iterative and stops at the first bound
 * crossed, so a schema nested a million deep costs no stack and no more than its first bound.
 */
export const SCHEMA_BOUNDS = {
  /** Serialized size of one schema. */
  maxBytes: 65_536,
  /** Nesting of JSON objects and arrays (a subschema under `properties` is two levels down). */
  maxDepth: 64,
  /** Objects and arrays in one schema (subschemas, property maps, keyword arrays). */
  maxNodes: 2_000,
  /** Items of any one array (`enum`, `anyOf`, `required`, ...). */
  maxArrayItems: 1_000,
} as const;

/** Why `schema` is out of bounds (a sentence for the caller), or null when it is within them. */
export function schemaOutOfBounds(schema: unknown): string | null {
  const stack: { value: unknown; depth: number }[] = [{ value: schema, depth: 1 }];
  let nodes = 0;
  while (stack.length > 0) {
    const { value, depth } = stack.pop()!;
    if (value === null || typeof value !== 'object') continue;
    if (depth > SCHEMA_BOUNDS.maxDepth) return `it is nested deeper than ${SCHEMA_BOUNDS.maxDepth} levels`;
    if (++nodes > SCHEMA_BOUNDS.maxNodes) return `it has more than ${SCHEMA_BOUNDS.maxNodes} objects and arrays`;
    const children = Array.isArray(value) ? value : Object.values(value);
    if (Array.isArray(value) && value.length > SCHEMA_BOUNDS.maxArrayItems) {
      return `it has an array of ${value.length} items (at most ${SCHEMA_BOUNDS.maxArrayItems}, enum and anyOf included)`;
    }
    for (const child of children) stack.push({ value: child, depth: depth + 1 });
  }
  const bytes = Buffer.byteLength(JSON.stringify(schema));
  if (bytes > SCHEMA_BOUNDS.maxBytes) return `it is ${bytes} bytes as JSON (at most ${SCHEMA_BOUNDS.maxBytes})`;
  return null;
}

/**
 * Keywords whose checking cost is not linear in the input (references and recursion, combinators
 * that try every branch, patterns and formats, pairwise `uniqueItems`): a schema using any of them
 * is only ever checked in the schema thread.
 */
const THREAD_ONLY_KEYWORDS = new Set([
  '$ref',
  '$dynamicRef',
  '$recursiveRef',
  '$defs',
  'definitions',
  'anyOf',
  'oneOf',
  'allOf',
  'not',
  'if',
  'then',
  'else',
  'pattern',
  'patternProperties',
  'format',
  'uniqueItems',
  'contains',
  'propertyNames',
  'dependencies',
  'dependentSchemas',
  'unevaluatedProperties',
  'unevaluatedItems',
]);

/** A small schema (at most this many objects and arrays) without thread-only keywords: compiled in well under a millisecond, checked in time linear in the input. */
export const PLAIN_SCHEMA_MAX_NODES = 64;

/**
 * Whether a schema is plain enough to check on the process's own thread: within
 * PLAIN_SCHEMA_MAX_NODES, none of THREAD_ONLY_KEYWORDS anywhere (a property that happens to be
 * named like one counts too: the rule errs towards the thread).
 */
export function isPlainSchema(schema: unknown): boolean {
  const stack: unknown[] = [schema];
  let nodes = 0;
  while (stack.length > 0) {
    const value = stack.pop();
    if (value === null || typeof value !== 'object') continue;
    if (++nodes > PLAIN_SCHEMA_MAX_NODES) return false;
    if (Array.isArray(value)) stack.push(...value);
    else
      for (const [key, child] of Object.entries(value)) {
        if (THREAD_ONLY_KEYWORDS.has(key)) return false;
        stack.push(child);
      }
  }
  return true;
}
