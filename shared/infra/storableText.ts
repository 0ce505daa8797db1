/**
 * Postgres stores neither a NUL character (text and jsonb) nor an unpaired UTF-16 surrogate (jsonb
 * refuses its escape). The api refuses such text at the edge, naming the field; what a model or a
 * tool produces is made storable instead (each such character becomes U+FFFD).
 */

// A high surrogate not followed by a low one, or a low one not preceded by a high one.
const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/g;

/** Why `text` cannot be stored, or null when it can. */
export function unstorableReason(text: string): string | null {
  if (text.includes('\u0000')) return 'a NUL character (\\u0000)';
  if (text.search(LONE_SURROGATE) !== -1) return 'an unpaired surrogate (not valid Unicode)';
  return null;
}

/** `text` with each NUL and unpaired surrogate replaced by U+FFFD. */
export function storableText(text: string): string {
  return text.replaceAll('\u0000', '\uFFFD').replace(LONE_SURROGATE, '\uFFFD');
}

/** The path (`messages[0].parts[1].text`) and reason of the first unstorable string or key in a JSON value, or null. Iterative: no stack to overflow. */
export function findUnstorableText(value: unknown): { path: string; reason: string } | null {
  const stack: { value: unknown; path: string }[] = [{ value, path: '' }];
  while (stack.length > 0) {
    const { value: current, path } = stack.pop()!;
    if (typeof current === 'string') {
      const reason = unstorableReason(current);
      if (reason) return { path: path || '(the body)', reason };
    } else if (Array.isArray(current)) {
      for (let i = current.length - 1; i >= 0; i--) stack.push({ value: current[i], path: `${path}[${i}]` });
    } else if (current !== null && typeof current === 'object') {
      const entries = Object.entries(current);
      for (let i = entries.length - 1; i >= 0; i--) {
        const [key, child] = entries[i]!;
        const childPath = path ? `${path}.${key}` : key;
        const reason = key === '__proto__' ? 'a key named __proto__ (not accepted anywhere)' : unstorableReason(key);
        if (reason) return { path: key === '__proto__' ? childPath : `a key under ${path || 'the body'}`, reason };
        stack.push({ value: child, path: childPath });
      }
    }
  }
  return null;
}

/** A JSON value with every string and key made storable; the value itself when nothing needed it. Iterative, as above. */
export function storableJson<T>(value: T): T {
  if (!findUnstorableText(value)) return value;
  const clean = (v: unknown): unknown => (typeof v === 'string' ? storableText(v) : Array.isArray(v) ? [] : v !== null && typeof v === 'object' ? {} : v);
  const root = clean(value);
  const stack: { from: unknown; to: unknown }[] = [{ from: value, to: root }];
  while (stack.length > 0) {
    const { from, to } = stack.pop()!;
    if (Array.isArray(from)) {
      for (const item of from) {
        const copy = clean(item);
        (to as unknown[]).push(copy);
        stack.push({ from: item, to: copy });
      }
    } else if (from !== null && typeof from === 'object') {
      for (const [key, item] of Object.entries(from)) {
        const copy = clean(item);
        Object.defineProperty(to, storableText(key), { value: copy, enumerable: true, writable: true, configurable: true });
        stack.push({ from: item, to: copy });
      }
    }
  }
  return root as T;
}
