import { channelContract } from '../fixtures/channel-contract.js';
import { createMemoryPair } from '../../src/transport/index.js';

const maxFrame = 4096;

channelContract('memory pair', async () => {
  const [a, b] = createMemoryPair({ limits: { maxFrame } });
  return { a, b, cleanup: async () => { a.destroy(); b.destroy(); } };
}, { maxFrame });
