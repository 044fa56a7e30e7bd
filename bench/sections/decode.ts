import { loadBundle } from '../../packages/server/src/engine/bundle.js';
import { MagmaModel } from '../../packages/server/src/engine/magma-model.js';
import type { StepInput } from '../../packages/server/src/engine/magma-model.js';
import { openModel } from '../../packages/server/src/engine/model-sessions.js';
import { PromptTokenizer } from '../../packages/server/src/engine/prompt.js';
import { argmax } from '../../packages/server/src/engine/sampler.js';
import { decodeImage, drawMarks } from '../../packages/server/src/images/index.js';
import type { BenchContext } from '../context.js';
import { median, round } from '../stats.js';

const BATCH_SIZES = [1, 2, 4, 8, 16];

/**
 * Engine direct, no server: the cost of one batched decode step at each batch size, for B
 * copies of the benchmark prompt (1024x768, 2x2 grid). "fed back" is the steady state of an
 * unchanged batch (its present is the next step's past); "re-padded" is a step right after a
 * join or leave, which copies every cache into new padded tensors.
 */
export async function decode(context: BenchContext) {
  const { settings, workload, log } = context;
  const modelDir = process.env['MAGMA_MODEL_DIR']!;
  const bundle = loadBundle(modelDir);
  const sessions = await openModel(bundle, {});
  try {
    const model = new MagmaModel(sessions, bundle.config);
    const prompt = new PromptTokenizer(bundle.tokenizer, bundle.config.imageTokenId);
    const decoded = await decodeImage(workload.jpeg, { maxBytes: 1 << 30, maxPixels: 1 << 30 });
    const image = await model.encodeImage(drawMarks(decoded.image, workload.marks));
    const ids = prompt.encodeUserQuestion(workload.ask(0, 1).prompt);
    const prefill = await model.forward(await model.promptEmbeddings(ids, image), {
      past: null,
      pastLength: 0,
    });
    const promptTokens = ids.length - 1 + image.tokens;
    const steps = settings.quick ? 4 : 16;
    const rows = [];
    for (const batch of BATCH_SIZES) {
      // B sequences with the same prompt, first step re-padded from the prefill cache
      let inputs: StepInput[] = Array.from({ length: batch }, () => ({
        past: prefill.present,
        pastLength: promptTokens,
      }));
      let token = argmax(prefill.logits);
      const fedBack: number[] = [];
      const repadded: number[] = [];
      for (let step = 0; step < steps; step++) {
        // alternate: even steps reverse the row order, which forces the copying path (a lone
        // sequence has no other order, so batch 1 is always fed back)
        const copy = batch > 1 && step % 2 === 0;
        const order = copy ? [...inputs].reverse() : inputs;
        const started = performance.now();
        const embeds = await model.embed(new Array<number>(batch).fill(token), batch);
        const outputs = await model.forwardBatch(embeds, order);
        (copy ? repadded : fedBack).push(performance.now() - started);
        token = argmax(outputs[0]!.logits);
        inputs = outputs.map((out, b) => ({
          past: out.present,
          pastLength: order[b]!.pastLength + 1,
        }));
      }
      const row = {
        batch,
        fedBackMs: round(median(fedBack)),
        repaddedMs: repadded.length > 0 ? round(median(repadded)) : null,
        fedBackMsPerSequence: round(median(fedBack) / batch),
      };
      rows.push(row);
      log(`decode step B=${batch}: ${row.fedBackMs} ms fed back, ${row.repaddedMs} ms re-padded`);
    }
    return { promptTokens, steps, rows };
  } finally {
    await sessions.release();
  }
}
