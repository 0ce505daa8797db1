import { expect } from 'chai';
import { compactionNeeded, withSummary } from '../../worker/agent/compaction.js';
import type { ChatContext } from '../../worker/agent/conversation.js';

describe('compaction decisions', () => {
  const due = { earlierMessages: 10, compactedThisEpisode: false, windowTokens: 1_000, observedInputTokens: 800, thresholdPercent: 80 };

  it('compacts once the last call’s input reached the threshold’s share of the window', () => {
    expect(compactionNeeded(due)).to.equal(true);
    expect(compactionNeeded({ ...due, observedInputTokens: 799 })).to.equal(false);
    expect(compactionNeeded({ ...due, thresholdPercent: 50, observedInputTokens: 500 })).to.equal(true);
  });

  it('never compacts with nothing earlier to summarise, twice in one episode, or without a known window or a measured input', () => {
    expect(compactionNeeded({ ...due, earlierMessages: 0 })).to.equal(false);
    expect(compactionNeeded({ ...due, compactedThisEpisode: true })).to.equal(false);
    expect(compactionNeeded({ ...due, windowTokens: null })).to.equal(false);
    expect(compactionNeeded({ ...due, observedInputTokens: null })).to.equal(false);
  });

  it('sends the summary as conversation content in a user turn, joined to the first user message, never as the system role', () => {
    const chat = { compaction: { summary: 'they met' } } as unknown as ChatContext;
    const joined = withSummary(chat, [
      { role: 'user', content: 'hello' },
      { role: 'assistant', content: 'hi' },
    ] as never);
    expect(joined).to.have.length(2);
    expect(joined[0]).to.deep.include({ role: 'user' });
    expect((joined[0] as { content: string }).content).to.match(/^\[Summary of the earlier conversation[^\]]*\]\nthey met\n\nhello$/);
    const before = withSummary(chat, [{ role: 'assistant', content: 'hi' }] as never);
    expect(before.map((message) => message.role)).to.deep.equal(['user', 'assistant']);
    expect(withSummary({ compaction: null } as unknown as ChatContext, [{ role: 'user', content: 'x' }] as never)).to.deep.equal([
      { role: 'user', content: 'x' },
    ]);
  });
});
