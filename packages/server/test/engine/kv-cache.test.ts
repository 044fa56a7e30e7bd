import * as ort from 'onnxruntime-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadBundle } from '../../src/engine/bundle.js';
import { MagmaModel, cacheLength } from '../../src/engine/magma-model.js';
import type { KvCache, PrefixKv } from '../../src/engine/magma-model.js';
import { openModel } from '../../src/engine/model-sessions.js';
import type { ModelSessions } from '../../src/engine/model-sessions.js';
import { PromptTokenizer } from '../../src/engine/prompt.js';
import { argmax } from '../../src/engine/sampler.js';
import { readFloats } from '../../src/engine/tensors.js';
import { TINY_BUNDLE, hasTinyBundle, noiseImage } from './helpers/tiny-bundle.js';

function maxAbsDiff(a: Float32Array, b: Float32Array): number {
  expect(a.length).toBe(b.length);
  let max = 0;
  for (let i = 0; i < a.length; i++) max = Math.max(max, Math.abs(a[i]! - b[i]!));
  return max;
}

function concat(a: Float32Array, b: Float32Array): Float32Array {
  const out = new Float32Array(a.length + b.length);
  out.set(a);
  out.set(b, a.length);
  return out;
}

describe.skipIf(!hasTinyBundle)('decoder with KV cache (fp32, magma-tiny-som)', () => {
  let sessions: ModelSessions;
  let model: MagmaModel;
  let prompt: PromptTokenizer;

  beforeAll(async () => {
    const bundle = loadBundle(TINY_BUNDLE, { dtype: 'fp32' });
    sessions = await openModel(bundle, { executionProvider: 'cpu' });
    model = new MagmaModel(sessions, bundle.config);
    prompt = new PromptTokenizer(bundle.tokenizer, bundle.config.imageTokenId);
  });
  afterAll(async () => {
    await sessions?.release();
  });

  async function promptEmbeds(question: string, width: number, height: number, seed: number) {
    const image = await model.encodeImage(noiseImage(width, height, seed));
    return model.promptEmbeddings(prompt.encodeQuestion(question), image);
  }

  async function embedOne(id: number): Promise<Float32Array> {
    return Float32Array.from(readFloats(await model.embed([id], 1)));
  }

  it('step k with the cache equals one full forward over the same k tokens', async () => {
    const H = model.config.hiddenSize;
    let sequence = await promptEmbeds('What color is mark #1?', 160, 120, 3);
    const first = await model.forward(sequence, { past: null, pastLength: 0 });
    let past: KvCache = first.present;
    let pastLength = sequence.length / H;
    let token = argmax(first.logits);
    for (let step = 1; step <= 6; step++) {
      const embeds = await embedOne(token);
      const cached = await model.forward(embeds, { past, pastLength });
      sequence = concat(sequence, embeds);
      const full = await model.forward(sequence, { past: null, pastLength: 0 });
      expect(maxAbsDiff(cached.logits, full.logits)).toBeLessThanOrEqual(1e-4);
      // the cache grows by one position per step
      expect(cacheLength(cached.present)).toBe(pastLength + 1);
      past = cached.present;
      pastLength++;
      token = argmax(cached.logits);
    }
  });

  it('a left-padded batch gives each sequence the logits it gets alone', async () => {
    const a = await promptEmbeds('Is there a red circle?', 128, 128, 5); // 1x1 grid
    const b = await promptEmbeds('How many objects are there?', 300, 140, 6); // wider grid: longer prompt
    const H = model.config.hiddenSize;
    expect(a.length).not.toBe(b.length);
    const prefillA = await model.forward(a, { past: null, pastLength: 0 });
    const prefillB = await model.forward(b, { past: null, pastLength: 0 });
    let seqs = [
      { past: prefillA.present, pastLength: a.length / H, token: argmax(prefillA.logits) },
      { past: prefillB.present, pastLength: b.length / H, token: argmax(prefillB.logits) },
    ];
    for (let step = 0; step < 4; step++) {
      const embeds = await model.embed(
        seqs.map((s) => s.token),
        2,
      );
      const batched = await model.forwardBatch(embeds, seqs);
      const alone = await Promise.all(
        seqs.map(async (s) =>
          model.forward(await embedOne(s.token), { past: s.past, pastLength: s.pastLength }),
        ),
      );
      // the two rows share one present, which the next step feeds back as it is
      expect(batched[1]!.present.tensors).toBe(batched[0]!.present.tensors);
      for (let i = 0; i < 2; i++) {
        expect(maxAbsDiff(batched[i]!.logits, alone[i]!.logits)).toBeLessThanOrEqual(1e-4);
        expect(cacheLength(batched[i]!.present)).toBe(seqs[i]!.pastLength + 1);
      }
      seqs = seqs.map((s, i) => ({
        past: batched[i]!.present,
        pastLength: s.pastLength + 1,
        token: argmax(batched[i]!.logits),
      }));
    }
  });

  it('embeddings from rows kept by id equal embed_tokens, also after rows were dropped for room', async () => {
    const H = model.config.hiddenSize;
    // room for three rows: most blocks below drop rows they or the block before used
    const small = new MagmaModel(sessions, model.config, 3 * H * 4);
    const direct = async (ids: number[]) =>
      readFloats(
        (
          await sessions.embed.run({
            input_ids: new ort.Tensor('int64', BigInt64Array.from(ids.map(BigInt)), [
              1,
              ids.length,
            ]),
          })
        )['inputs_embeds']!,
      );
    const blocks = [[5, 6, 7], [7, 8, 9, 5], [5, 5, 10], [11, 12, 13, 14, 5], [6]];
    for (const ids of blocks) {
      const kept = readFloats(await small.embed(ids, 1));
      expect(kept.length).toBe(ids.length * H);
      expect(maxAbsDiff(kept, await direct(ids))).toBe(0);
    }
    // two sequences of one step each: [batch, 1, H]
    const stepped = await small.embed([9, 14], 2);
    expect(stepped.dims).toEqual([2, 1, H]);
    expect(maxAbsDiff(readFloats(stepped), await direct([9, 14]))).toBe(0);
  });

  it('prompts of different lengths prefilled in one run, left-padded, give each its own logits and cache', async () => {
    const H = model.config.hiddenSize;
    const a = await promptEmbeds('Is there a red circle?', 128, 128, 7); // 1x1 grid
    const b = await promptEmbeds('How many objects are there?', 300, 140, 8); // longer prompt
    const [lengthA, lengthB] = [a.length / H, b.length / H];
    expect(lengthA).toBeLessThan(lengthB);
    // row 0: padding (any values: they are masked), then a; row 1: b
    const block = new Float32Array(2 * lengthB * H).fill(0.5);
    block.set(a, (lengthB - lengthA) * H);
    block.set(b, lengthB * H);
    const batched = await model.forwardBatch(block, [
      { past: null, pastLength: 0, newLength: lengthA },
      { past: null, pastLength: 0, newLength: lengthB },
    ]);
    const alone = [
      await model.forward(a, { past: null, pastLength: 0 }),
      await model.forward(b, { past: null, pastLength: 0 }),
    ];
    const lengths = [lengthA, lengthB];
    for (let i = 0; i < 2; i++) {
      expect(maxAbsDiff(batched[i]!.logits, alone[i]!.logits)).toBeLessThanOrEqual(1e-4);
      expect(cacheLength(batched[i]!.present)).toBe(lengths[i]);
    }
    // the padding stays masked in the next step, which continues each sequence as alone
    const tokens = alone.map((out) => argmax(out.logits));
    const next = await model.forwardBatch(
      await model.embed(tokens, 2),
      batched.map((out, i) => ({ past: out.present, pastLength: lengths[i]! })),
    );
    for (let i = 0; i < 2; i++) {
      const single = await model.forward(await embedOne(tokens[i]!), {
        past: alone[i]!.present,
        pastLength: lengths[i]!,
      });
      expect(maxAbsDiff(next[i]!.logits, single.logits)).toBeLessThanOrEqual(1e-4);
    }
    // padding among the new positions needs an empty past: it would sit in the middle of a row
    await expect(
      model.forwardBatch(await model.embed([tokens[0]!, tokens[0]!], 1), [
        { past: alone[0]!.present, pastLength: lengthA, newLength: 1 },
      ]),
    ).rejects.toThrow(/without a past/);
  });

  it('prompts fed as prefixes of their own, batched, give the logits of prompts fed as the past', async () => {
    const H = model.config.hiddenSize;
    const a = await promptEmbeds('Is there a red circle?', 128, 128, 5);
    const b = await promptEmbeds('How many objects are there?', 300, 140, 6);
    // records the prefix each decoder run is fed
    const run = sessions.decoder.run.bind(sessions.decoder);
    const fedPrefixes: unknown[] = [];
    sessions.decoder.run = ((feeds: Parameters<typeof run>[0], ...rest: unknown[]) => {
      fedPrefixes.push(feeds['prefix_key_values.0.key']);
      return (run as (...args: unknown[]) => ReturnType<typeof run>)(feeds, ...rest);
    }) as typeof run;
    try {
      const prefills = await Promise.all(
        [a, b].map((x) => model.forward(x, { past: null, pastLength: 0 })),
      );
      // as prefixes (the scheduler's way): the prompt's cache is read in place, past starts empty
      let asPrefix = prefills.map((p) => ({
        prefix: { tensors: p.present.tensors, length: cacheLength(p.present) } as PrefixKv | null,
        past: null as KvCache | null,
        pastLength: 0,
        token: argmax(p.logits),
      }));
      // as the past, the whole cache copied through every run (as before prefix inputs)
      let asPast = prefills.map((p) => ({ past: p.present, pastLength: cacheLength(p.present) }));
      expect(asPrefix[0]!.prefix!.length).not.toBe(asPrefix[1]!.prefix!.length);
      fedPrefixes.length = 0;
      for (let step = 0; step < 3; step++) {
        const tokens = asPrefix.map((s) => s.token);
        const viaPrefix = await model.forwardBatch(await model.embed(tokens, 2), asPrefix);
        const viaPast = await model.forwardBatch(await model.embed(tokens, 2), asPast);
        for (let i = 0; i < 2; i++) {
          expect(maxAbsDiff(viaPrefix[i]!.logits, viaPast[i]!.logits)).toBeLessThanOrEqual(1e-4);
          // the present holds only the generated positions; the prefix goes on as it was
          expect(cacheLength(viaPrefix[i]!.present)).toBe(step + 1);
          expect(viaPrefix[i]!.prefix).toBe(asPrefix[i]!.prefix);
          expect(cacheLength(viaPast[i]!.present)).toBe(asPast[i]!.pastLength + 1);
        }
        asPrefix = asPrefix.map((_, i) => ({
          prefix: viaPrefix[i]!.prefix,
          past: viaPrefix[i]!.present,
          pastLength: step + 1,
          token: argmax(viaPrefix[i]!.logits),
        }));
        asPast = asPast.map((s, i) => ({
          past: viaPast[i]!.present,
          pastLength: s.pastLength + 1,
        }));
        expect(asPrefix.map((s) => s.token)).toEqual(viaPast.map((o) => argmax(o.logits)));
      }
      // the batch's padded prefix was built once and fed again while the batch stayed the same
      const batchedPrefixes = fedPrefixes.filter((_, k) => k % 2 === 0);
      expect(batchedPrefixes[0]!).toBeDefined();
      expect(new Set(batchedPrefixes).size).toBe(1);
      // as wide as the longer prompt, or a little wider (prefix-batch.ts)
      expect((batchedPrefixes[0] as { dims: number[] }).dims[2]).toBeGreaterThanOrEqual(
        Math.max(a.length, b.length) / H,
      );
    } finally {
      sessions.decoder.run = run;
      model.forgetBatch();
    }
  });
});
