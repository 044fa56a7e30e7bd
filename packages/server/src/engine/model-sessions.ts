import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join, relative } from 'node:path';
import * as ort from 'onnxruntime-node';
import type { Bundle, GraphName } from './bundle.js';
import { EngineError } from './errors.js';
import {
  checkGraph,
  decoderSpec,
  embedTokensSpec,
  floatTypeOf,
  visionEncoderSpec,
} from './graph-contract.js';
import type { GraphSpec } from './graph-contract.js';
import type { EngineOptions, ExecutionProviderName } from './types.js';

// Opens the three graphs of a bundle on the chosen execution provider and checks each against
// the bundle contract. Runs in the engine worker: InferenceSession.create blocks its thread.

export type FloatType = 'float32' | 'float16';

export type SessionSettings = Pick<
  EngineOptions,
  | 'executionProvider'
  | 'deviceId'
  | 'intraOpNumThreads'
  | 'interOpNumThreads'
  | 'graphOptimizationLevel'
  | 'spinWait'
>;

export interface ModelSessions {
  readonly vision: ort.InferenceSession;
  readonly embed: ort.InferenceSession;
  readonly decoder: ort.InferenceSession;
  readonly provider: ExecutionProviderName;
  readonly pixelType: FloatType;
  readonly embedsType: FloatType;
  readonly decoderEmbedsType: FloatType;
  readonly kvType: FloatType;
  readonly hasNumLogitsToKeep: boolean;
  /** The decoder takes a prefix's keys and values as inputs of their own (prefix_key_values.*). */
  readonly hasPrefixInputs: boolean;
  /** Present KV stays in GPU memory between steps (WebGPU only: CUDA outputs always come back to the host). */
  readonly kvOnDevice: boolean;
  release(): Promise<void>;
}

const require = createRequire(import.meta.url);

function providerLibraryInstalled(name: string): boolean {
  // Non-bundled providers (cuda, tensorrt) are shared libraries that onnxruntime-node's install
  // script downloads beside its native binding.
  try {
    const packageDir = dirname(dirname(require.resolve('onnxruntime-node')));
    const bindingDir = join(packageDir, 'bin', 'napi-v6', process.platform, process.arch);
    const file =
      process.platform === 'win32'
        ? `onnxruntime_providers_${name}.dll`
        : `libonnxruntime_providers_${name}.so`;
    return existsSync(join(bindingDir, file));
  } catch {
    return false;
  }
}

/** Throws PROVIDER_UNAVAILABLE when this onnxruntime-node install cannot run the provider. */
export function assertProviderInstalled(provider: ExecutionProviderName): void {
  if (provider === 'cpu') return;
  const backends = ort.listSupportedBackends();
  const entry = backends.find((b) => b.name === provider);
  const usable = entry !== undefined && (entry.bundled || providerLibraryInstalled(provider));
  if (!usable) {
    const installed = backends
      .filter((b) => b.bundled || providerLibraryInstalled(b.name))
      .map((b) => b.name)
      .join(', ');
    const hint =
      provider === 'cuda'
        ? '; install onnxruntime-node with its CUDA binaries (ONNXRUNTIME_NODE_INSTALL=cuda12, needs network access)'
        : '';
    throw new EngineError(
      'PROVIDER_UNAVAILABLE',
      `execution provider "${provider}" is not installed in onnxruntime-node ${ort.env.versions.common} (available: ${installed})${hint}`,
    );
  }
}

function sessionOptions(
  settings: SessionSettings,
  outputsOnDevice: string[] = [],
): ort.InferenceSession.SessionOptions {
  const provider = settings.executionProvider ?? 'cpu';
  // CUDA reads deviceId; the WebGPU EP rejects unknown options and picks its own adapter.
  const executionProviders: ort.InferenceSession.ExecutionProviderConfig[] =
    provider === 'cuda' ? [{ name: 'cuda', deviceId: settings.deviceId ?? 0 }] : [provider];
  const options: ort.InferenceSession.SessionOptions = {
    executionProviders,
    graphOptimizationLevel: settings.graphOptimizationLevel ?? 'all',
    logSeverityLevel: 3,
  };
  if (!(settings.spinWait ?? false)) {
    // Idle pool threads sleep instead of spinning: spinning burns the cores that the server's
    // main thread (HTTP, image decoding) needs while the engine is busy.
    options.extra = {
      session: { intra_op: { allow_spinning: '0' }, inter_op: { allow_spinning: '0' } },
    };
  }
  if (settings.intraOpNumThreads !== undefined)
    options.intraOpNumThreads = settings.intraOpNumThreads;
  if (settings.interOpNumThreads !== undefined)
    options.interOpNumThreads = settings.interOpNumThreads;
  if (outputsOnDevice.length > 0) {
    options.preferredOutputLocation = Object.fromEntries(
      outputsOnDevice.map((name) => [name, 'gpu-buffer' as const]),
    );
  }
  return options;
}

async function openGraph(
  bundle: Bundle,
  graph: GraphName,
  spec: GraphSpec,
  settings: SessionSettings,
  outputsOnDevice?: string[],
): Promise<ort.InferenceSession> {
  const path = bundle.graphs[graph];
  const file = relative(bundle.dir, path);
  let session: ort.InferenceSession;
  try {
    // Loading by path lets onnxruntime find external weights (X.onnx_data) beside the graph.
    session = await ort.InferenceSession.create(path, sessionOptions(settings, outputsOnDevice));
  } catch (error) {
    const message = (error as Error).message;
    const provider = settings.executionProvider ?? 'cpu';
    if (provider !== 'cpu' && /provider|cuda|webgpu|vulkan|dawn|adapter|device/i.test(message)) {
      throw new EngineError(
        'PROVIDER_UNAVAILABLE',
        `execution provider "${provider}" failed to start on ${file}: ${message}`,
      );
    }
    throw new EngineError(
      'INVALID_BUNDLE',
      `model bundle: ${file}: onnxruntime cannot load it (${message})`,
    );
  }
  try {
    checkGraph(file, spec, session);
  } catch (error) {
    await session.release();
    throw error;
  }
  return session;
}

export async function openModel(bundle: Bundle, settings: SessionSettings): Promise<ModelSessions> {
  const provider = settings.executionProvider ?? 'cpu';
  assertProviderInstalled(provider);
  const { config } = bundle;
  const kvOnDevice = provider === 'webgpu';
  const presentNames: string[] = [];
  for (let i = 0; i < config.numLayers; i++)
    presentNames.push(`present.${i}.key`, `present.${i}.value`);

  const opened: ort.InferenceSession[] = [];
  try {
    const vision = await openGraph(bundle, 'vision_encoder', visionEncoderSpec(config), settings);
    opened.push(vision);
    const embed = await openGraph(bundle, 'embed_tokens', embedTokensSpec(config), settings);
    opened.push(embed);
    const decoder = await openGraph(
      bundle,
      'decoder_model_merged',
      decoderSpec(config),
      settings,
      kvOnDevice ? presentNames : undefined,
    );
    opened.push(decoder);
    return {
      vision,
      embed,
      decoder,
      provider,
      pixelType: floatTypeOf(vision.inputMetadata, 'pixel_values'),
      embedsType: floatTypeOf(embed.outputMetadata, 'inputs_embeds'),
      decoderEmbedsType: floatTypeOf(decoder.inputMetadata, 'inputs_embeds'),
      kvType: floatTypeOf(decoder.inputMetadata, 'past_key_values.0.key'),
      hasNumLogitsToKeep: decoder.inputNames.includes('num_logits_to_keep'),
      hasPrefixInputs: decoder.inputNames.includes('prefix_key_values.0.key'),
      kvOnDevice,
      async release() {
        await Promise.all([vision.release(), embed.release(), decoder.release()]);
      },
    };
  } catch (error) {
    await Promise.all(opened.map((s) => s.release()));
    throw error;
  }
}
