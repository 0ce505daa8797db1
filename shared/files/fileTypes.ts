import { imageSize } from 'image-size';
import { AppError } from '../infra/errors.js';

/**
 * The types a message may carry (SPEC section 20), each recognised by its content: a binary type by
 * its signature (magic bytes), a text type by being UTF-8 without NUL bytes — so that an executable
 * declared `image/png` is refused, whatever its name or header says.
 */
export const IMAGE_TYPES = ['image/png', 'image/jpeg', 'image/gif', 'image/webp'] as const;
export const TEXT_TYPES = ['text/plain', 'text/markdown', 'text/csv', 'application/json'] as const;
export const ACCEPTED_TYPES = [...IMAGE_TYPES, 'application/pdf', ...TEXT_TYPES] as const;
export type AcceptedType = (typeof ACCEPTED_TYPES)[number];

export type FileKind = 'image' | 'pdf' | 'text';
export const kindOf = (mediaType: string): FileKind =>
  (IMAGE_TYPES as readonly string[]).includes(mediaType) ? 'image' : mediaType === 'application/pdf' ? 'pdf' : 'text';

const startsWith = (head: Buffer, bytes: number[], at = 0) => head.length >= at + bytes.length && bytes.every((byte, i) => head[at + i] === byte);
const ascii = (text: string) => [...text].map((c) => c.charCodeAt(0));

/** The binary types by their signatures. */
const SIGNATURES: [AcceptedType, (head: Buffer) => boolean][] = [
  ['image/png', (head) => startsWith(head, [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a])],
  ['image/jpeg', (head) => startsWith(head, [0xff, 0xd8, 0xff])],
  ['image/gif', (head) => startsWith(head, ascii('GIF87a')) || startsWith(head, ascii('GIF89a'))],
  ['image/webp', (head) => startsWith(head, ascii('RIFF')) && startsWith(head, ascii('WEBP'), 8)],
  ['application/pdf', (head) => startsWith(head, ascii('%PDF-'))],
];

/** `image/PNG; charset=x` → `image/png`; `text/x-markdown` is Markdown. */
export function normalizeMediaType(declared: string | undefined): string | undefined {
  const type = declared?.split(';')[0]?.trim().toLowerCase();
  if (!type) return undefined;
  return type === 'text/x-markdown' ? 'text/markdown' : type;
}

const unsupported = (mediaType: string) =>
  new AppError(
    'attachment_type_unsupported',
    415,
    `Files of type "${mediaType}" cannot be attached.`,
    `Send one of: ${ACCEPTED_TYPES.join(', ')} (named by its Content-Type).`,
  );

export const typeMismatch = (mediaType: string, found: string) =>
  new AppError(
    'attachment_type_mismatch',
    400,
    `The content is not ${mediaType}: ${found}.`,
    'Send the file with the Content-Type of what it really is (its bytes are checked).',
  );

/**
 * The file's type, from what the caller declared (missing or application/octet-stream: found from
 * the content) checked against its first bytes. Text is checked further as it streams (textChecker).
 */
export function checkedType(declared: string | undefined, head: Buffer): AcceptedType {
  const type = normalizeMediaType(declared);
  const found = SIGNATURES.find(([, matches]) => matches(head))?.[0];
  if (!type || type === 'application/octet-stream') {
    if (found) return found;
    throw new AppError(
      'attachment_type_unsupported',
      415,
      'The file’s type was not given and its content is none of the binary types runyard takes.',
      `Name its type with Content-Type: ${ACCEPTED_TYPES.join(', ')}.`,
    );
  }
  if (!(ACCEPTED_TYPES as readonly string[]).includes(type)) throw unsupported(type);
  const accepted = type as AcceptedType;
  if (kindOf(accepted) === 'text') {
    if (found) throw typeMismatch(accepted, `it starts like ${found}`);
    return accepted;
  }
  if (found !== accepted) throw typeMismatch(accepted, found ? `it starts like ${found}` : 'its first bytes are not that format’s signature');
  return accepted;
}

/** Checks a text file chunk by chunk: valid UTF-8, no NUL byte (what a binary file would have). */
export function textChecker(mediaType: AcceptedType): { push(chunk: Buffer): void; end(): void } {
  const decoder = new TextDecoder('utf-8', { fatal: true });
  const fail = () => typeMismatch(mediaType, 'it is not UTF-8 text');
  return {
    push(chunk) {
      if (chunk.includes(0)) throw fail();
      try {
        decoder.decode(chunk, { stream: true });
      } catch {
        throw fail();
      }
    },
    end() {
      try {
        decoder.decode();
      } catch {
        throw fail();
      }
    },
  };
}

/** An image's size in pixels from its first bytes; null when they do not say (a JPEG whose header is later). */
export function imageDimensions(head: Buffer): { width: number; height: number } | null {
  try {
    const size = imageSize(head);
    return size.width && size.height ? { width: size.width, height: size.height } : null;
  } catch {
    return null;
  }
}
