import { loadBundle } from '../../../src/engine/bundle.js';
import type { Bundle } from '../../../src/engine/bundle.js';
import { MagmaModel } from '../../../src/engine/magma-model.js';
import { openModel } from '../../../src/engine/model-sessions.js';
import type { ModelSessions } from '../../../src/engine/model-sessions.js';
import { TINY_BUNDLE } from './tiny-bundle.js';

/**
 * The tiny model opened for scheduler tests: it never stops on eos and never emits special
 * tokens (they are put in the suppressed range), so every sequence runs to its maxTokens and
 * the tests control lengths exactly.
 */
export async function openTinyModelWithoutStops(): Promise<{
  bundle: Bundle;
  sessions: ModelSessions;
  model: MagmaModel;
}> {
  const bundle = loadBundle(TINY_BUNDLE);
  const added = (bundle.tokenizer.tokenizerJson as { added_tokens: Array<{ id: number }> })
    .added_tokens;
  const firstSpecial = Math.min(...added.map((t) => t.id));
  const sessions = await openModel(bundle, {});
  const model = new MagmaModel(sessions, {
    ...bundle.config,
    eosTokenIds: [],
    actionTokenRange: [firstSpecial, bundle.config.vocabSize - 1],
  });
  return { bundle, sessions, model };
}
