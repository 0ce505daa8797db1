import { databaseFunction } from './databaseFunction.js';

/** Whether anyone watches a chat or its account's chat list (chat_event_watchers): the chat event triggers write nothing otherwise. */
export default databaseFunction(
  'runyard_chat_watched',
  `CREATE OR REPLACE FUNCTION public.runyard_chat_watched(chat uuid, account uuid)
 RETURNS boolean
 LANGUAGE sql
 STABLE
AS $function$
  SELECT EXISTS (SELECT 1 FROM chat_event_watchers w
    WHERE w.subject IN ('chat:' || chat::text, 'account:' || account::text) AND w.until > now())
$function$;`,
);
