import type { ModelRef, Usage } from '../../shared/models.js';

export type ChatTurn = { role: 'user' | 'assistant' | 'system'; content: string };

/**
 * What a run's model and tools may use besides the prompt: the run-scoped API key lives here and
 * never in the messages sent to the model.
 */
export type ExecutionContext = { runId: string; accountId: string; apiKey: string; env: Record<string, string> };

export type ProviderRequest = {
  model: ModelRef;
  messages: ChatTurn[];
  system?: string;
  maxOutputTokens?: number;
  signal: AbortSignal;
  context: ExecutionContext;
};

export type ProviderResult = { usage: Usage; providerResponseId: string | null; finishReason: string };

/** One model provider. `onText` receives each text delta as the provider produces it. */
export interface ModelProvider {
  stream(request: ProviderRequest, onText: (text: string) => void): Promise<ProviderResult>;
}
