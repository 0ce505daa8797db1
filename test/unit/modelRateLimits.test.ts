import { expect } from 'chai';
import { ConfigError, loadConfig } from '../../shared/infra/config.js';
import { parseModelRateLimits, ruleFor } from '../../shared/flow/modelRateLimits.js';
import { priorityBand } from '../../shared/flow/priorities.js';

describe('flow control settings', () => {
  it('reads MODEL_RATE_LIMITS: a model’s own rule first, then its provider’s pattern', () => {
    const rules = parseModelRateLimits(loadConfig({}, { MODEL_RATE_LIMITS: 'openai/gpt-4o-mini=rpm:500,tpm:200000; anthropic/*=rpm:50' }).MODEL_RATE_LIMITS);
    expect(rules).to.deep.equal([
      { pattern: 'openai/gpt-4o-mini', rpm: 500, tpm: 200_000 },
      { pattern: 'anthropic/*', rpm: 50, tpm: null },
    ]);
    expect(ruleFor(rules, 'openai/gpt-4o-mini')?.rpm).to.equal(500);
    expect(ruleFor(rules, 'openai/gpt-4o'), 'no rule for another OpenAI model').to.equal(undefined);
    expect(ruleFor(rules, 'anthropic/claude-haiku-4-5')?.rpm).to.equal(50);
    expect(parseModelRateLimits('')).to.deep.equal([]);
  });

  it('refuses a MODEL_RATE_LIMITS it cannot read, naming the rule', () => {
    for (const bad of ['openai/gpt-4o=rpm', 'openai/gpt-4o=rps:5', 'gpt-4o=rpm:5', 'openai/*=rpm:5,rpm:6,tpm:1'])
      expect(() => loadConfig({}, { MODEL_RATE_LIMITS: bad }), bad).to.throw(ConfigError, /MODEL_RATE_LIMITS/);
  });

  it('orders an account’s runs by priority: high, normal (also when none is given), low', () => {
    expect([priorityBand('high'), priorityBand('normal'), priorityBand(undefined), priorityBand('low')]).to.deep.equal([0, 1, 1, 2]);
  });
});
