import { expect } from 'chai';
import { BUSY_POLICY, DEFAULT_ON_BUSY, ON_BUSY, queuePosition } from '../../shared/chats/busyPolicy.js';

describe('the busy policy (onBusy)', () => {
  it('names every behaviour the request schema accepts, queue by default', () => {
    expect(ON_BUSY).to.deep.equal(['queue', 'interrupt', 'reject']);
    expect(DEFAULT_ON_BUSY).to.equal('queue');
  });

  it('queues at the back, interrupts from the front, and refuses without queueing', () => {
    const queue = { first: 3n, last: 7n };
    expect(queuePosition(BUSY_POLICY.queue, queue)).to.equal(8n);
    expect(queuePosition(BUSY_POLICY.interrupt, queue)).to.equal(2n);
    expect(BUSY_POLICY.interrupt.interruptsActiveRun).to.equal(true);
    expect(BUSY_POLICY.queue.interruptsActiveRun).to.equal(false);
    expect(BUSY_POLICY.reject).to.include({ refused: true, queueAt: null });
  });

  it('places the first message of an empty queue at 1 (back) or 0 (front)', () => {
    const empty = { first: null, last: null };
    expect(queuePosition(BUSY_POLICY.queue, empty)).to.equal(1n);
    expect(queuePosition(BUSY_POLICY.interrupt, empty)).to.equal(0n);
  });
});
