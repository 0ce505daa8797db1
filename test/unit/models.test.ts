import { expect } from 'chai';
import { costMicros, parseModelId, resolveModel } from '../../shared/agent/models.js';
import { loadConfig } from '../../shared/infra/config.js';
import { AppError } from '../../shared/infra/errors.js';
import { runBackoffDelay } from '../../shared/runs/runJob.js';
import { retryAfterMs, providerHttpError } from '../../worker/providers/providerErrors.js';

const usage = (inputTokens: number, outputTokens: number, cachedInputTokens = 0) => ({
  inputTokens,
  outputTokens,
  cachedInputTokens,
  reasoningTokens: 0,
  totalTokens: inputTokens + outputTokens,
});

describe('models', () => {
  it('parses provider/model ids', () => {
    expect(parseModelId('openai/gpt-4o-mini')).to.deep.equal({ id: 'openai/gpt-4o-mini', provider: 'openai', name: 'gpt-4o-mini' });
    expect(parseModelId('gpt-4o')).to.equal(undefined);
    expect(parseModelId('mystery/x')).to.equal(undefined);
  });

  it('rejects a model whose provider has no key, with model_unavailable', () => {
    const config = loadConfig({}, {});
    expect(() => resolveModel('openai/gpt-4o', config))
      .to.throw(AppError)
      .with.property('code', 'model_unavailable');
    expect(() => resolveModel('anthropic/claude-haiku-4-5', config))
      .to.throw(AppError)
      .with.property('status', 400);
    expect(() => resolveModel('local/other', config)).to.throw(AppError);
    expect(resolveModel('openai/gpt-4o', loadConfig({}, { OPENAI_API_KEY: 'sk-test' })).provider).to.equal('openai');
  });

  it('computes integer micro-dollar cost, rounded up once after summing', () => {
    // gpt-4o-mini: $0.15 / $0.60 per MTok → 0.15 µ$ per input token, 0.6 µ$ per output token.
    expect(costMicros('openai/gpt-4o-mini', usage(1, 1))).to.equal(1n); // 0.75 → 1
    expect(costMicros('openai/gpt-4o-mini', usage(10, 10))).to.equal(8n); // 7.5 → 8
    expect(costMicros('openai/gpt-4o', usage(1000, 500))).to.equal(7500n); // 2500 + 5000
    // cached input tokens are priced at the cached rate
    expect(costMicros('openai/gpt-4o', usage(1000, 0, 1000))).to.equal(1250n);
    expect(costMicros('local/echo', usage(100, 100))).to.equal(0n);
  });

  it('stores null, not 0, for an unpriced model', () => {
    expect(costMicros('openai/some-new-model', usage(10, 10))).to.equal(null);
  });
});

describe('retry timing', () => {
  it('backs off exponentially and never sooner than Retry-After', () => {
    const first = runBackoffDelay(1, 1000);
    const third = runBackoffDelay(3, 1000);
    expect(first).to.be.within(1000, 1200);
    expect(third).to.be.within(4000, 4200);
    expect(runBackoffDelay(1, 1000, 10_000)).to.equal(10_000);
  });

  it('reads Retry-After as seconds or a date', () => {
    expect(retryAfterMs('2')).to.equal(2000);
    expect(retryAfterMs(new Date(Date.now() + 5000).toUTCString())).to.be.within(3000, 5000);
    expect(retryAfterMs(undefined)).to.equal(undefined);
  });

  it('retries 408, 429 and 5xx and fails other 4xx at once', () => {
    expect(providerHttpError('OpenAI', 429, 'slow down', '3')).to.include({ retryable: true, code: 'provider_rate_limited', retryAfterMs: 3000 });
    expect(providerHttpError('OpenAI', 503, 'down').retryable).to.equal(true);
    expect(providerHttpError('OpenAI', 408, 'timeout').retryable).to.equal(true);
    expect(providerHttpError('OpenAI', 400, 'bad').retryable).to.equal(false);
    expect(providerHttpError('OpenAI', 401, 'key').retryable).to.equal(false);
  });
});
