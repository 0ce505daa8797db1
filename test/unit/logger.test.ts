import { expect } from 'chai';
import { redactDeep } from '../../shared/infra/logger.js';

describe('key masking in logs', () => {
  const key = `ry_sk_${'k'.repeat(43)}`;

  it('masks a key at any depth: nested objects, arrays, an error’s message and its cause', () => {
    const cause = new Error(`upstream said ${key}`);
    const logged = {
      top: `Bearer ${key}`,
      nested: { deeper: { header: key }, list: ['fine', `x ${key}`] },
      error: new Error(`request with ${key} failed`, { cause }),
    };
    const masked = JSON.stringify(redactDeep(logged));
    expect(masked).to.not.include(key);
    expect(masked).to.include('ry_sk_[redacted]');
    expect(masked).to.include('upstream said');
  });

  it('copes with cycles', () => {
    const a: Record<string, unknown> = { key };
    a.self = a;
    expect(JSON.stringify(redactDeep(a))).to.not.include(key);
  });
});
