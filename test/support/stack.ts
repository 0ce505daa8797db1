import type { FleetMember } from '../../worker/fleet/fleetMember.js';
import { createAccount, type TestAccount } from './factories.js';
import { startFakeProviders, type FakeProviders } from './fakeProviders.js';
import { startApi, startWorker, type ApiHarness } from './harness.js';

/** The fake model servers, an api and an in-process worker on one queue prefix, and an account. */
export type Stack = { fake: FakeProviders; api: ApiHarness; worker: FleetMember; alice: TestAccount; env: Record<string, string>; close: () => Promise<void> };

/** Starts a Stack whose OpenAI and Anthropic providers point at the fake servers; `settings` add to or override the environment. */
export async function startStack(settings: Record<string, string> = {}): Promise<Stack> {
  const fake = await startFakeProviders();
  const env = {
    OPENAI_API_KEY: 'sk-fake-openai',
    OPENAI_BASE_URL: fake.openaiBaseUrl,
    ANTHROPIC_API_KEY: 'sk-ant-fake',
    ANTHROPIC_BASE_URL: fake.anthropicBaseUrl,
    ...settings,
  };
  const api = startApi(env);
  // The worker tells tools where runyard is (PUBLIC_BASE_URL): the api listening on its port-0 address.
  const worker = await startWorker(api.prefix, { PUBLIC_BASE_URL: await api.url(), ...env });
  const alice = await createAccount(api.deps.db);
  const stack: Stack = {
    fake,
    api,
    worker,
    alice,
    env,
    // The worker a test left in `stack.worker` (a test may replace it), not necessarily the first one.
    close: async () => {
      await stack.worker.close(1_000);
      await api.close();
      await fake.close();
    },
  };
  return stack;
}
