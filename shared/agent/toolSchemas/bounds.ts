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
