import { expect } from 'chai';
import { generateKey, hashesEqual, hashKey, keyFromHeaders, looksLikeKey } from '../../shared/accounts/keys.js';
import { openSecret, sealSecret } from '../../shared/accounts/secrets.js';
import { redactSecrets } from '../../shared/infra/logger.js';

describe('API keys', () => {
  it('makes account and ephemeral keys with 32 random bytes and stores only a hash and a prefix', () => {
    const account = generateKey('account');
    const ephemeral = generateKey('ephemeral');
    expect(account.raw).to.match(/^ry_sk_[A-Za-z0-9_-]{43}$/);
    expect(ephemeral.raw).to.match(/^ry_ek_[A-Za-z0-9_-]{43}$/);
    expect(account.hash).to.equal(hashKey(account.raw)).and.to.have.length(64);
    expect(account.prefix).to.equal(account.raw.slice(0, 12));
    expect(generateKey('account').raw).to.not.equal(account.raw);
    expect(looksLikeKey(account.raw)).to.equal(true);
    expect(looksLikeKey('ry_sk_short')).to.equal(false);
  });

  it('reads Bearer in any case and x-api-key', () => {
    expect(keyFromHeaders('Bearer abc', undefined)).to.equal('abc');
    expect(keyFromHeaders('bEaReR   abc ', undefined)).to.equal('abc');
    expect(keyFromHeaders(undefined, 'xyz')).to.equal('xyz');
    expect(keyFromHeaders('Basic abc', undefined)).to.equal(undefined);
  });

  it('compares hashes in constant time and rejects different lengths', () => {
    const hash = hashKey('a');
    expect(hashesEqual(hash, hashKey('a'))).to.equal(true);
    expect(hashesEqual(hash, hashKey('b'))).to.equal(false);
    expect(hashesEqual(hash, 'ab')).to.equal(false);
  });
});

describe('secrets in job data', () => {
  it('round-trips through AES-GCM and never carries the plaintext', () => {
    const raw = generateKey('ephemeral').raw;
    const sealed = sealSecret(raw, 'secret-one-0123456789');
    expect(JSON.stringify(sealed)).to.not.include(raw);
    expect(openSecret(sealed, 'secret-one-0123456789')).to.equal(raw);
  });

  it('refuses to open with another secret or a tampered payload', () => {
    const sealed = sealSecret('hello', 'secret-one-0123456789');
    expect(() => openSecret(sealed, 'secret-two-0123456789')).to.throw();
    expect(() => openSecret({ ...sealed, data: sealed.data.slice(0, -2) + 'AA' }, 'secret-one-0123456789')).to.throw();
  });

  it('masks keys that slip into log text', () => {
    const raw = generateKey('ephemeral').raw;
    expect(redactSecrets(`token ${raw} leaked`)).to.equal('token ry_ek_[redacted] leaked');
  });
});
