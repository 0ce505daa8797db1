/** A stored message part: the AI SDK's UI message parts, of which runyard reads only text. */
export type MessagePart = { type: string; text?: string };

/** A message's text: its text parts joined (other parts carry none). */
export const textOfParts = (parts: MessagePart[]): string =>
  parts
    .filter((part) => part.type === 'text')
    .map((part) => part.text ?? '')
    .join('');
