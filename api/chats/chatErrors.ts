import { AppError, notFound } from '../../shared/infra/errors.js';

export const chatNotFound = () => notFound('chat_not_found', 'The chat');

export const queuedMessageNotFound = () =>
  new AppError('queued_message_not_found', 404, 'The queued message was not found (it may have become a run already).', 'List the chat’s queued messages.');

export const chatBusy = (activeRunId: string) =>
  new AppError(
    'chat_busy',
    409,
    'The chat has an active run and the message asked to be refused then (onBusy: reject).',
    'Retry once the run ends, or send with onBusy "queue" or "interrupt".',
    {
      details: { activeRunId },
    },
  );

export const chatIdle = () =>
  new AppError('chat_idle', 409, 'The chat has no active run: there is nothing to interrupt.', 'Send the message; it starts a run at once.');

export const chatArchived = () =>
  new AppError('chat_archived', 409, 'The chat is archived: it takes no message.', 'Unarchive it (POST /api/chats/{chatId}/unarchive) first.');

export const chatQueueFull = (max: number) =>
  new AppError(
    'chat_queue_full',
    429,
    `The chat already has ${max} queued messages (CHAT_MAX_QUEUED_MESSAGES).`,
    'Wait for the queued messages to run, or delete some.',
    {
      retryAfterSeconds: 5,
    },
  );

export const messageNotFound = () =>
  new AppError(
    'message_not_found',
    404,
    'The message was not found in the chat’s history (an edit or a regenerate may have taken it out).',
    'List the chat’s messages.',
  );

export const messageNotEditable = () =>
  new AppError('message_not_editable', 400, 'Only a user message can be edited.', 'Edit the user message the answer replied to, or regenerate the answer.');
