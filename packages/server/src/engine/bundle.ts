import { existsSync, readFileSync, statSync } from 'node:fs';
import { basename, join } from 'node:path';
import { z } from 'zod';
import { EngineError } from './errors.js';
import type { ExecutionProviderName } from './types.js';

// Reads and checks the JSON side of a model bundle (docs/BUNDLE.md). Every size, id and
// constant the engine uses comes from here; the graphs are checked against it later
// (graph-contract.ts), once onnxruntime has opened them.

const int = z.number().int();
const positiveInt = int.positive();

const configSchema = z.object({
  model_type: z.literal('magma'),
  name: z.string().min(1).optional(),
  revision: z.string().min(1).optional(),
  image_token_index: int.nonnegative(),
  text_config: z.object({
    hidden_size: positiveInt,
    num_hidden_layers: positiveInt,
    num_attention_heads: positiveInt,
    num_key_value_heads: positiveInt,
    head_dim: positiveInt.optional(),
    vocab_size: positiveInt,
    max_position_embeddings: positiveInt,
  }),
  vision_config: z.object({
    img_size: positiveInt.optional(),
    feature_stride: positiveInt,
  }),
  action_token_range: z.tuple([int.nonnegative(), int.nonnegative()]).optional(),
});

const preprocessorSchema = z.object({
  anyres_strategy: z.literal('crop'),
  base_img_size: positiveInt,
  num_crops: positiveInt,
  image_mean: z.tuple([z.number(), z.number(), z.number()]),
  image_std: z.tuple([z.number().positive(), z.number().positive(), z.number().positive()]),
});

const generationSchema = z.object({
  bos_token_id: int.nonnegative().optional(),
  eos_token_id: z.union([int.nonnegative(), z.array(int.nonnegative()).min(1)]),
  pad_token_id: int.nonnegative().optional(),
  max_new_tokens: positiveInt.optional(),
  top_p: z.number().gt(0).max(1).optional(),
});

const tokenText = z.union([z.string(), z.object({ content: z.string() })]);

const tokenizerConfigSchema = z.object({
  chat_template: z.union([
    z.string().min(1),
    z.array(z.object({ name: z.string(), template: z.string().min(1) })).min(1),
  ]),
  bos_token: tokenText.nullish(),
  eos_token: tokenText.nullish(),
  add_bos_token: z.boolean().optional(),
});

/** Everything the engine needs to know about a model, read from the bundle's files. */
export interface ModelConfig {
  readonly name: string;
  readonly revision: string;
  readonly imageTokenId: number;
  readonly hiddenSize: number;
  readonly numLayers: number;
  readonly numKeyValueHeads: number;
  readonly headDim: number;
  readonly vocabSize: number;
  readonly maxPositionEmbeddings: number;
  /** S: side of one crop in pixels. */
  readonly cropSize: number;
  readonly maxCrops: number;
  /** g: feature cells per crop side (S / feature_stride). */
  readonly cellsPerSide: number;
  readonly imageMean: readonly [number, number, number];
  readonly imageStd: readonly [number, number, number];
  readonly eosTokenIds: readonly number[];
  readonly actionTokenRange?: readonly [number, number];
  readonly defaultTopP: number;
}

export interface TokenizerFiles {
  readonly tokenizerJson: object;
  /** tokenizer_config.json as written (decoding options such as clean_up_tokenization_spaces). */
  readonly tokenizerConfig: object;
  readonly chatTemplate: string;
  readonly bosToken: string | undefined;
  readonly eosToken: string | undefined;
  /** Whether the tokenizer prepends BOS itself when encoding (Magma's does: hence the double BOS). */
  readonly addBosToken: boolean;
  readonly bosTokenId: number | undefined;
}

export type GraphName = 'vision_encoder' | 'embed_tokens' | 'decoder_model_merged';
export const GRAPH_NAMES: readonly GraphName[] = [
  'vision_encoder',
  'embed_tokens',
  'decoder_model_merged',
];

export interface Bundle {
  readonly dir: string;
  readonly dtype: 'fp32' | 'fp16';
  readonly config: ModelConfig;
  readonly tokenizer: TokenizerFiles;
  /** Absolute path of each graph file; external data (X.onnx_data) is found beside it by onnxruntime. */
  readonly graphs: Readonly<Record<GraphName, string>>;
}

export interface LoadBundleOptions {
  readonly dtype?: 'fp32' | 'fp16' | 'auto';
  readonly executionProvider?: ExecutionProviderName;
}

function invalid(file: string, problem: string): EngineError {
  return new EngineError('INVALID_BUNDLE', `model bundle: ${file}: ${problem}`);
}

function readJson(dir: string, file: string): unknown {
  const path = join(dir, file);
  if (!existsSync(path)) throw invalid(file, 'file is missing');
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (error) {
    throw invalid(file, `cannot be read (${(error as Error).message})`);
  }
  try {
    return JSON.parse(text);
  } catch (error) {
    throw invalid(file, `is not valid JSON (${(error as Error).message})`);
  }
}

function parseWith<T>(schema: z.ZodType<T>, value: unknown, file: string): T {
  const result = schema.safeParse(value);
  if (result.success) return result.data;
  const problems = result.error.issues.map((issue) => {
    const where = issue.path.length > 0 ? issue.path.join('.') : '(root)';
    return `${where}: ${issue.message}`;
  });
  throw invalid(file, problems.join('; '));
}

function tokenContent(token: z.infer<typeof tokenText> | null | undefined): string | undefined {
  if (token === null || token === undefined) return undefined;
  return typeof token === 'string' ? token : token.content;
}

function graphPath(dir: string, graph: GraphName, dtype: 'fp32' | 'fp16'): string {
  return join(dir, 'onnx', `${graph}${dtype === 'fp16' ? '_fp16' : ''}.onnx`);
}

function chooseDtype(dir: string, options: LoadBundleOptions): 'fp32' | 'fp16' {
  const wanted = options.dtype ?? 'auto';
  if (wanted !== 'auto') return wanted;
  const onGpu = (options.executionProvider ?? 'cpu') !== 'cpu';
  const allFp16 = GRAPH_NAMES.every((graph) => existsSync(graphPath(dir, graph, 'fp16')));
  return onGpu && allFp16 ? 'fp16' : 'fp32';
}

/** Reads a bundle folder and checks its files; throws EngineError('INVALID_BUNDLE') naming the file and the problem. */
export function loadBundle(modelDir: string, options: LoadBundleOptions = {}): Bundle {
  if (!existsSync(modelDir) || !statSync(modelDir).isDirectory()) {
    throw new EngineError('INVALID_BUNDLE', `model bundle: ${modelDir} is not a folder`);
  }
  const config = parseWith(configSchema, readJson(modelDir, 'config.json'), 'config.json');
  const preprocessor = parseWith(
    preprocessorSchema,
    readJson(modelDir, 'preprocessor_config.json'),
    'preprocessor_config.json',
  );
  const generation = parseWith(
    generationSchema,
    readJson(modelDir, 'generation_config.json'),
    'generation_config.json',
  );
  const rawTokenizerConfig = readJson(modelDir, 'tokenizer_config.json');
  const tokenizerConfig = parseWith(
    tokenizerConfigSchema,
    rawTokenizerConfig,
    'tokenizer_config.json',
  );
  const tokenizerJson = readJson(modelDir, 'tokenizer.json');
  if (typeof tokenizerJson !== 'object' || tokenizerJson === null || !('model' in tokenizerJson)) {
    throw invalid('tokenizer.json', 'is not a Hugging Face tokenizers file (no "model" section)');
  }
  readJson(modelDir, 'special_tokens_map.json');

  const text = config.text_config;
  const headDim = text.head_dim ?? text.hidden_size / text.num_attention_heads;
  if (!Number.isInteger(headDim)) {
    throw invalid(
      'config.json',
      'text_config.head_dim is missing and hidden_size / num_attention_heads is not whole',
    );
  }
  const cropSize = preprocessor.base_img_size;
  if (config.vision_config.img_size !== undefined && config.vision_config.img_size !== cropSize) {
    throw invalid(
      'config.json',
      `vision_config.img_size ${config.vision_config.img_size} differs from preprocessor_config.json base_img_size ${cropSize}`,
    );
  }
  const cellsPerSide = cropSize / config.vision_config.feature_stride;
  if (!Number.isInteger(cellsPerSide)) {
    throw invalid(
      'config.json',
      `base_img_size ${cropSize} is not a multiple of vision_config.feature_stride`,
    );
  }
  if (config.image_token_index >= text.vocab_size) {
    throw invalid(
      'config.json',
      `image_token_index ${config.image_token_index} is outside vocab_size ${text.vocab_size}`,
    );
  }
  const range = config.action_token_range;
  if (range !== undefined && range[0] > range[1]) {
    throw invalid('config.json', 'action_token_range must be [first, last] with first <= last');
  }

  const chatTemplate =
    typeof tokenizerConfig.chat_template === 'string'
      ? tokenizerConfig.chat_template
      : (tokenizerConfig.chat_template.find((t) => t.name === 'default') ??
          tokenizerConfig.chat_template[0])!.template;

  const dtype = chooseDtype(modelDir, options);
  const graphs = {} as Record<GraphName, string>;
  for (const graph of GRAPH_NAMES) {
    const path = graphPath(modelDir, graph, dtype);
    if (!existsSync(path))
      throw invalid(`onnx/${basename(path)}`, `file is missing (dtype ${dtype})`);
    graphs[graph] = path;
  }

  const eos = generation.eos_token_id;
  return {
    dir: modelDir,
    dtype,
    graphs,
    config: {
      name: config.name ?? basename(modelDir),
      revision: config.revision ?? 'unknown',
      imageTokenId: config.image_token_index,
      hiddenSize: text.hidden_size,
      numLayers: text.num_hidden_layers,
      numKeyValueHeads: text.num_key_value_heads,
      headDim,
      vocabSize: text.vocab_size,
      maxPositionEmbeddings: text.max_position_embeddings,
      cropSize,
      maxCrops: preprocessor.num_crops,
      cellsPerSide,
      imageMean: preprocessor.image_mean,
      imageStd: preprocessor.image_std,
      eosTokenIds: Array.isArray(eos) ? eos : [eos],
      ...(range !== undefined ? { actionTokenRange: range } : {}),
      defaultTopP: generation.top_p ?? 1,
    },
    tokenizer: {
      tokenizerJson,
      tokenizerConfig: rawTokenizerConfig as object,
      chatTemplate,
      bosToken: tokenContent(tokenizerConfig.bos_token),
      eosToken: tokenContent(tokenizerConfig.eos_token),
      addBosToken: tokenizerConfig.add_bos_token ?? true,
      bosTokenId: generation.bos_token_id,
    },
  };
}
