import { existsSync, readFileSync, statSync } from 'node:fs';
import { basename, join } from 'node:path';
import { z } from 'zod';
import { DEFAULT_MARK_MINIMUMS } from '../images/mark-sizing.js';
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
  /** This project's own section (docs/BUNDLE.md): what the model was trained to read. */
  magma_som: z
    .object({
      marks: z
        .object({
          min_label_text_height: z.number().positive(),
          min_outline_width: z.number().positive(),
        })
        .optional(),
      /** What MAGMA_DTYPE=auto loads: set by quantize.py --out in a single-variant bundle. */
      default_dtype: z.enum(['fp32', 'fp16', 'q4', 'q8', 'q4f16', 'q8f16']).optional(),
      /**
       * Per-graph dtypes of a mixed export (hf_magma.py --vision-dtype ...): the file a graph
       * loads from when the requested dtype has none (docs/BUNDLE.md "Per-graph dtypes").
       */
      graph_dtypes: z
        .object({
          vision_encoder: z.enum(['fp32', 'fp16']),
          embed_tokens: z.enum(['fp32', 'fp16']),
          decoder_model_merged: z.enum(['fp32', 'fp16']),
        })
        .partial()
        .optional(),
    })
    .optional(),
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
  /** Smallest label text height and outline the model reads, in model pixels (mark-sizing.ts). */
  readonly markMinimums: { readonly labelTextHeight: number; readonly outlineWidth: number };
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

/**
 * Which graph files the engine loads: fp32 `X.onnx`, fp16 `X_fp16.onnx`, or a weight-only
 * quantized variant (`X_q4.onnx`, `X_q8.onnx`, and `_q4f16`/`_q8f16` made from the fp16 graphs;
 * tools/magma_onnx/quantize.py). A quantized dtype needs its decoder file; a graph without a
 * variant (the embeddings, and the vision graph if not written) loads from its base dtype.
 */
export type BundleDtype = 'fp32' | 'fp16' | 'q4' | 'q8' | 'q4f16' | 'q8f16';
export const BUNDLE_DTYPES: readonly BundleDtype[] = ['fp32', 'fp16', 'q4', 'q8', 'q4f16', 'q8f16'];

/** One graph file as loaded: where, which dtype's file it is, and its bytes on disk (with X.onnx_data). */
export interface GraphFile {
  readonly path: string;
  readonly dtype: BundleDtype;
  readonly bytes: number;
}

export interface Bundle {
  readonly dir: string;
  readonly dtype: BundleDtype;
  readonly config: ModelConfig;
  readonly tokenizer: TokenizerFiles;
  /** Absolute path of each graph file; external data (X.onnx_data) is found beside it by onnxruntime. */
  readonly graphs: Readonly<Record<GraphName, string>>;
  /** The same files with their dtype and size (memory accounting, info()). */
  readonly graphFiles: Readonly<Record<GraphName, GraphFile>>;
}

export interface LoadBundleOptions {
  readonly dtype?: BundleDtype | 'auto';
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

function graphPath(dir: string, graph: GraphName, dtype: BundleDtype): string {
  return join(dir, 'onnx', `${graph}${dtype === 'fp32' ? '' : `_${dtype}`}.onnx`);
}

/** The unquantized dtype a quantized variant was made from (its fallback for graphs without one). */
function baseDtype(dtype: BundleDtype): 'fp32' | 'fp16' {
  return dtype === 'fp16' || dtype.endsWith('f16') ? 'fp16' : 'fp32';
}

/** Bytes of a graph file plus its external weights (X.onnx_data), if any. */
function graphBytes(path: string): number {
  const data = `${path}_data`;
  return statSync(path).size + (existsSync(data) ? statSync(data).size : 0);
}

function chooseDtype(
  dir: string,
  options: LoadBundleOptions,
  declared: BundleDtype | undefined,
): BundleDtype {
  const wanted = options.dtype ?? 'auto';
  if (wanted !== 'auto') return wanted;
  if (declared !== undefined) return declared;
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

  const dtype = chooseDtype(modelDir, options, config.magma_som?.default_dtype);
  const graphs = {} as Record<GraphName, string>;
  const graphFiles = {} as Record<GraphName, GraphFile>;
  for (const graph of GRAPH_NAMES) {
    let fileDtype = dtype;
    let path = graphPath(modelDir, graph, dtype);
    // Quantized bundles carry variants of the graphs worth quantizing only; the decoder must have one.
    if (!existsSync(path) && dtype !== baseDtype(dtype) && graph !== 'decoder_model_merged') {
      fileDtype = baseDtype(dtype);
      path = graphPath(modelDir, graph, fileDtype);
    }
    // A mixed export (e.g. fp32 vision, fp16 decoder) has one file per graph, in its declared dtype.
    const declared = config.magma_som?.graph_dtypes?.[graph];
    if (!existsSync(path) && declared !== undefined) {
      const wanted = path;
      fileDtype = declared;
      path = graphPath(modelDir, graph, declared);
      if (!existsSync(path)) {
        throw invalid(
          `onnx/${basename(path)}`,
          `file is missing (config.json magma_som.graph_dtypes.${graph} is ${declared}; no onnx/${basename(wanted)} either)`,
        );
      }
    }
    if (!existsSync(path))
      throw invalid(`onnx/${basename(path)}`, `file is missing (dtype ${dtype})`);
    graphs[graph] = path;
    graphFiles[graph] = { path, dtype: fileDtype, bytes: graphBytes(path) };
  }

  const eos = generation.eos_token_id;
  return {
    dir: modelDir,
    dtype,
    graphs,
    graphFiles,
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
      markMinimums: {
        labelTextHeight:
          config.magma_som?.marks?.min_label_text_height ?? DEFAULT_MARK_MINIMUMS.labelTextHeight,
        outlineWidth:
          config.magma_som?.marks?.min_outline_width ?? DEFAULT_MARK_MINIMUMS.outlineWidth,
      },
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
