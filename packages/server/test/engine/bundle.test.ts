import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { loadBundle } from '../../src/engine/bundle.js';
import { Engine, EngineError } from '../../src/engine/index.js';
import { TINY_BUNDLE, copyTinyBundle, hasTinyBundle } from './helpers/tiny-bundle.js';

const made: string[] = [];
afterAll(() => {
  for (const dir of made) rmSync(dir, { recursive: true, force: true });
});

/** A bundle folder with valid JSON files and placeholder graphs: enough for loadBundle, which opens no graph. */
function syntheticBundle(edit: (dir: string) => void = () => undefined): string {
  const dir = mkdtempSync(join(tmpdir(), 'magma-synthetic-'));
  made.push(dir);
  const json = (file: string, value: unknown) =>
    writeFileSync(join(dir, file), JSON.stringify(value));
  json('config.json', {
    model_type: 'magma',
    name: 'synthetic',
    revision: 'r1',
    image_token_index: 12,
    text_config: {
      hidden_size: 64,
      num_hidden_layers: 2,
      num_attention_heads: 4,
      num_key_value_heads: 2,
      vocab_size: 100,
      max_position_embeddings: 256,
    },
    vision_config: { img_size: 64, feature_stride: 16 },
    action_token_range: [90, 99],
  });
  json('preprocessor_config.json', {
    anyres_strategy: 'crop',
    base_img_size: 64,
    num_crops: 4,
    image_mean: [0.5, 0.5, 0.5],
    image_std: [0.25, 0.25, 0.25],
  });
  json('generation_config.json', { bos_token_id: 1, eos_token_id: [2, 3] });
  json('tokenizer_config.json', { chat_template: '{{ messages[0].content }}', bos_token: '<s>' });
  json('tokenizer.json', { model: { type: 'BPE', vocab: {}, merges: [] } });
  json('special_tokens_map.json', {});
  mkdirSync(join(dir, 'onnx'));
  for (const graph of ['vision_encoder', 'embed_tokens', 'decoder_model_merged']) {
    writeFileSync(join(dir, 'onnx', `${graph}.onnx`), 'placeholder');
  }
  edit(dir);
  return dir;
}

function editJson(dir: string, file: string, edit: (value: Record<string, unknown>) => void): void {
  const path = join(dir, file);
  const value = JSON.parse(readFileSync(path, 'utf8')) as Record<string, unknown>;
  edit(value);
  writeFileSync(path, JSON.stringify(value));
}

function loadError(dir: string, options = {}): EngineError {
  try {
    loadBundle(dir, options);
  } catch (error) {
    expect(error).toBeInstanceOf(EngineError);
    expect((error as EngineError).code).toBe('INVALID_BUNDLE');
    return error as EngineError;
  }
  throw new Error('loadBundle accepted a broken bundle');
}

describe('loadBundle', () => {
  it('reads every size and id from the config files', () => {
    const bundle = loadBundle(syntheticBundle());
    expect(bundle.dtype).toBe('fp32');
    expect(bundle.config).toMatchObject({
      name: 'synthetic',
      revision: 'r1',
      imageTokenId: 12,
      hiddenSize: 64,
      numLayers: 2,
      numKeyValueHeads: 2,
      headDim: 16, // hidden_size / num_attention_heads when head_dim is absent
      vocabSize: 100,
      maxPositionEmbeddings: 256,
      cropSize: 64,
      maxCrops: 4,
      cellsPerSide: 4,
      eosTokenIds: [2, 3],
      actionTokenRange: [90, 99],
    });
  });

  it('accepts a single eos id', () => {
    const dir = syntheticBundle((d) =>
      editJson(d, 'generation_config.json', (g) => (g['eos_token_id'] = 7)),
    );
    expect(loadBundle(dir).config.eosTokenIds).toEqual([7]);
  });

  it('names a missing config file', () => {
    const dir = syntheticBundle((d) => rmSync(join(d, 'preprocessor_config.json')));
    expect(loadError(dir).message).toMatch(/preprocessor_config\.json: file is missing/);
  });

  it('names a file that is not JSON', () => {
    const dir = syntheticBundle((d) => writeFileSync(join(d, 'config.json'), '{ not json'));
    expect(loadError(dir).message).toMatch(/config\.json: is not valid JSON/);
  });

  it('names the field that fails the schema', () => {
    const dir = syntheticBundle((d) =>
      editJson(
        d,
        'config.json',
        (c) => ((c['text_config'] as Record<string, unknown>)['hidden_size'] = 'big'),
      ),
    );
    expect(loadError(dir).message).toMatch(/config\.json: text_config\.hidden_size/);
  });

  it('requires a chat template', () => {
    const dir = syntheticBundle((d) =>
      editJson(d, 'tokenizer_config.json', (c) => delete c['chat_template']),
    );
    expect(loadError(dir).message).toMatch(/tokenizer_config\.json: chat_template/);
  });

  it('names a missing tokenizer', () => {
    const dir = syntheticBundle((d) => rmSync(join(d, 'tokenizer.json')));
    expect(loadError(dir).message).toMatch(/tokenizer\.json: file is missing/);
  });

  it('names a missing graph', () => {
    const dir = syntheticBundle((d) => rmSync(join(d, 'onnx', 'embed_tokens.onnx')));
    expect(loadError(dir).message).toMatch(/onnx\/embed_tokens\.onnx: file is missing/);
  });

  it('uses _fp16 graphs when asked, and says when they are missing', () => {
    expect(loadError(syntheticBundle(), { dtype: 'fp16' }).message).toMatch(
      /vision_encoder_fp16\.onnx: file is missing/,
    );
    const dir = syntheticBundle((d) => {
      for (const g of ['vision_encoder', 'embed_tokens', 'decoder_model_merged']) {
        writeFileSync(join(d, 'onnx', `${g}_fp16.onnx`), 'placeholder');
      }
    });
    expect(loadBundle(dir, { dtype: 'fp16' }).graphs.decoder_model_merged).toMatch(
      /decoder_model_merged_fp16\.onnx$/,
    );
    // auto picks fp16 only on a GPU provider
    expect(loadBundle(dir, { dtype: 'auto', executionProvider: 'cpu' }).dtype).toBe('fp32');
    expect(loadBundle(dir, { dtype: 'auto', executionProvider: 'webgpu' }).dtype).toBe('fp16');
  });

  it('loads each graph of a mixed export in the dtype config.json declares for it', () => {
    const mixed = (d: string) => {
      rmSync(join(d, 'onnx', 'embed_tokens.onnx'));
      rmSync(join(d, 'onnx', 'decoder_model_merged.onnx'));
      writeFileSync(join(d, 'onnx', 'embed_tokens_fp16.onnx'), 'placeholder');
      writeFileSync(join(d, 'onnx', 'decoder_model_merged_fp16.onnx'), 'placeholder');
      editJson(d, 'config.json', (c) => {
        c.magma_som = {
          default_dtype: 'fp16',
          graph_dtypes: {
            vision_encoder: 'fp32',
            embed_tokens: 'fp16',
            decoder_model_merged: 'fp16',
          },
        };
      });
    };
    const bundle = loadBundle(syntheticBundle(mixed), { executionProvider: 'cpu' });
    expect(bundle.dtype).toBe('fp16');
    expect(bundle.graphs.vision_encoder).toMatch(/onnx\/vision_encoder\.onnx$/);
    expect(bundle.graphFiles.vision_encoder.dtype).toBe('fp32');
    expect(bundle.graphFiles.decoder_model_merged.dtype).toBe('fp16');
    // The declared file must exist: the error names it and the declaration.
    const broken = syntheticBundle((d) => {
      mixed(d);
      rmSync(join(d, 'onnx', 'vision_encoder.onnx'));
    });
    expect(loadError(broken).message).toMatch(
      /onnx\/vision_encoder\.onnx: file is missing \(config\.json magma_som\.graph_dtypes\.vision_encoder is fp32/,
    );
    // Without the declaration, a missing fp16 vision graph is still an error.
    const undeclared = syntheticBundle((d) => {
      mixed(d);
      editJson(d, 'config.json', (c) => {
        c.magma_som = { default_dtype: 'fp16' };
      });
    });
    expect(loadError(undeclared).message).toMatch(/vision_encoder_fp16\.onnx: file is missing/);
    expect(
      loadError(
        syntheticBundle((d) =>
          editJson(d, 'config.json', (c) => {
            c.magma_som = { graph_dtypes: { vision_encoder: 'bf16' } };
          }),
        ),
      ).message,
    ).toMatch(/magma_som\.graph_dtypes\.vision_encoder/);
  });

  it('rejects a crop size that is not a multiple of the feature stride', () => {
    const dir = syntheticBundle((d) =>
      editJson(
        d,
        'config.json',
        (c) => ((c['vision_config'] as Record<string, unknown>)['feature_stride'] = 7),
      ),
    );
    expect(loadError(dir).message).toMatch(/feature_stride/);
  });

  it('rejects a folder that does not exist', () => {
    expect(loadError('/nonexistent/magma-bundle').message).toMatch(/is not a folder/);
  });
});

describe.skipIf(!hasTinyBundle)('Engine.start refuses a broken bundle with a clear error', () => {
  async function startError(dir: string, options = {}): Promise<EngineError> {
    const error = await Engine.start({ modelDir: dir, ...options }).then(
      async (engine) => {
        await engine.close();
        return new Error('the engine started on a broken bundle');
      },
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(EngineError);
    return error as EngineError;
  }

  function brokenCopy(edit: (dir: string) => void): string {
    const dir = copyTinyBundle();
    made.push(dir);
    edit(dir);
    return dir;
  }

  it('missing graph file', async () => {
    const error = await startError(
      brokenCopy((d) => rmSync(join(d, 'onnx', 'decoder_model_merged.onnx'))),
    );
    expect(error.code).toBe('INVALID_BUNDLE');
    expect(error.message).toMatch(/onnx\/decoder_model_merged\.onnx: file is missing/);
  });

  it('graph with the wrong input names', async () => {
    // the embedding graph where the vision encoder should be
    const dir = brokenCopy((d) =>
      copyFileSync(
        join(TINY_BUNDLE, 'onnx', 'embed_tokens.onnx'),
        join(d, 'onnx', 'vision_encoder.onnx'),
      ),
    );
    const error = await startError(dir);
    expect(error.code).toBe('INVALID_BUNDLE');
    expect(error.message).toMatch(/onnx\/vision_encoder\.onnx: missing input "pixel_values"/);
  });

  it('corrupt ONNX file', async () => {
    const dir = brokenCopy((d) => {
      const path = join(d, 'onnx', 'embed_tokens.onnx');
      const bytes = readFileSync(path);
      writeFileSync(path, bytes.subarray(0, Math.floor(bytes.length / 3)));
    });
    const error = await startError(dir);
    expect(error.code).toBe('INVALID_BUNDLE');
    expect(error.message).toMatch(/onnx\/embed_tokens\.onnx: onnxruntime cannot load it/);
  });

  it('missing tokenizer', async () => {
    const error = await startError(brokenCopy((d) => rmSync(join(d, 'tokenizer.json'))));
    expect(error.code).toBe('INVALID_BUNDLE');
    expect(error.message).toMatch(/tokenizer\.json: file is missing/);
  });

  it('config that disagrees with the graphs', async () => {
    const dir = brokenCopy((d) =>
      editJson(d, 'config.json', (c) => {
        const text = c['text_config'] as Record<string, number>;
        text['num_hidden_layers'] = text['num_hidden_layers']! + 1;
      }),
    );
    const error = await startError(dir);
    expect(error.code).toBe('INVALID_BUNDLE');
    expect(error.message).toMatch(
      /decoder_model_merged\.onnx: missing input "past_key_values\.\d+\.key"/,
    );
  });

  it('execution provider that is not installed', async () => {
    const error = await startError(TINY_BUNDLE, { executionProvider: 'cuda' });
    expect(error.code).toBe('PROVIDER_UNAVAILABLE');
    expect(error.message).toMatch(/"cuda" is not installed/);
  });
});
