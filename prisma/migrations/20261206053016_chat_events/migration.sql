-- CreateTable
CREATE TABLE "chat_event_outbox" (
    "id" BIGSERIAL NOT NULL,
    "chat_id" UUID NOT NULL,
    "account_id" UUID NOT NULL,
    "kind" TEXT NOT NULL,
    "payload" JSONB NOT NULL DEFAULT '{}',
    "created_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "chat_event_outbox_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "chat_event_watchers" (
    "subject" TEXT NOT NULL,
    "until" TIMESTAMPTZ(3) NOT NULL,

    CONSTRAINT "chat_event_watchers_pkey" PRIMARY KEY ("subject")
);

-- Chat events (SPEC section 19) come from the transitions that cause them: these triggers write them
-- in the changing transaction, only while someone watches the chat or its account.
CREATE FUNCTION runyard_chat_watched(chat uuid, account uuid) RETURNS boolean LANGUAGE sql STABLE AS $$
  SELECT EXISTS (SELECT 1 FROM chat_event_watchers w
    WHERE w.subject IN ('chat:' || chat::text, 'account:' || account::text) AND w.until > now())
$$;

-- A run of a chat starting, parking, leaving its park and ending: chat.status (and chat.action_required around a park).
CREATE FUNCTION runyard_chat_events_of_run() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF NEW.chat_id IS NULL OR (TG_OP = 'UPDATE' AND OLD.status = NEW.status) THEN RETURN NULL; END IF;
  IF TG_OP = 'UPDATE' AND OLD.status = 'queued' AND NEW.status = 'running' THEN RETURN NULL; END IF;
  IF NOT runyard_chat_watched(NEW.chat_id, NEW.account_id) THEN RETURN NULL; END IF;
  INSERT INTO chat_event_outbox (chat_id, account_id, kind, payload)
    VALUES (NEW.chat_id, NEW.account_id, 'chat.status', jsonb_build_object('runId', NEW.id, 'runStatus', NEW.status));
  IF NEW.status = 'requires_action' OR (TG_OP = 'UPDATE' AND OLD.status = 'requires_action') THEN
    INSERT INTO chat_event_outbox (chat_id, account_id, kind, payload)
      VALUES (NEW.chat_id, NEW.account_id, 'chat.action_required', jsonb_build_object('runId', NEW.id));
  END IF;
  RETURN NULL;
END
$$;
CREATE TRIGGER runs_chat_events AFTER INSERT OR UPDATE OF status ON runs FOR EACH ROW EXECUTE FUNCTION runyard_chat_events_of_run();

-- A message added to a chat's history, or taken out of it by an edit or a regenerate: chat.messages.
CREATE FUNCTION runyard_chat_events_of_message() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
  account uuid;
BEGIN
  IF TG_OP = 'UPDATE' AND (OLD.discarded_at IS NOT NULL OR NEW.discarded_at IS NULL) THEN RETURN NULL; END IF;
  IF NOT runyard_chat_watched(NEW.chat_id, NULL) THEN RETURN NULL; END IF;
  SELECT c.account_id INTO account FROM chats c WHERE c.id = NEW.chat_id;
  INSERT INTO chat_event_outbox (chat_id, account_id, kind, payload)
    VALUES (NEW.chat_id, account, 'chat.messages',
      CASE WHEN TG_OP = 'INSERT' THEN jsonb_build_object('added', jsonb_build_array(NEW.id), 'discarded', '[]'::jsonb)
      ELSE jsonb_build_object('added', '[]'::jsonb, 'discarded', jsonb_build_array(NEW.id)) END);
  RETURN NULL;
END
$$;
CREATE TRIGGER messages_chat_events AFTER INSERT OR UPDATE OF discarded_at ON messages FOR EACH ROW EXECUTE FUNCTION runyard_chat_events_of_message();

-- A message queued, reordered or taken from the queue: chat.queue.
CREATE FUNCTION runyard_chat_events_of_queue() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
  q queued_messages;
BEGIN
  q := CASE WHEN TG_OP = 'DELETE' THEN OLD ELSE NEW END;
  IF NOT runyard_chat_watched(q.chat_id, NULL) THEN RETURN NULL; END IF;
  INSERT INTO chat_event_outbox (chat_id, account_id, kind) VALUES (q.chat_id, q.account_id, 'chat.queue');
  RETURN NULL;
END
$$;
CREATE TRIGGER queued_messages_chat_events AFTER INSERT OR UPDATE OR DELETE ON queued_messages FOR EACH ROW EXECUTE FUNCTION runyard_chat_events_of_queue();

-- A chat created, retitled, archived or deleted: chat.created, chat.title, chat.archived, chat.deleted.
CREATE FUNCTION runyard_chat_events_of_chat() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF TG_OP = 'DELETE' THEN
    IF runyard_chat_watched(OLD.id, OLD.account_id) THEN
      INSERT INTO chat_event_outbox (chat_id, account_id, kind) VALUES (OLD.id, OLD.account_id, 'chat.deleted');
    END IF;
    RETURN NULL;
  END IF;
  IF NOT runyard_chat_watched(NEW.id, NEW.account_id) THEN RETURN NULL; END IF;
  IF TG_OP = 'INSERT' THEN
    INSERT INTO chat_event_outbox (chat_id, account_id, kind) VALUES (NEW.id, NEW.account_id, 'chat.created');
    RETURN NULL;
  END IF;
  IF OLD.title IS DISTINCT FROM NEW.title THEN
    INSERT INTO chat_event_outbox (chat_id, account_id, kind) VALUES (NEW.id, NEW.account_id, 'chat.title');
  END IF;
  IF OLD.archived_at IS NULL AND NEW.archived_at IS NOT NULL THEN
    INSERT INTO chat_event_outbox (chat_id, account_id, kind) VALUES (NEW.id, NEW.account_id, 'chat.archived');
  END IF;
  RETURN NULL;
END
$$;
CREATE TRIGGER chats_chat_events AFTER INSERT OR UPDATE OF title, archived_at OR DELETE ON chats FOR EACH ROW EXECUTE FUNCTION runyard_chat_events_of_chat();

CREATE TRIGGER chat_event_outbox_notify AFTER INSERT ON chat_event_outbox FOR EACH STATEMENT EXECUTE FUNCTION runyard_notify_outbox();
