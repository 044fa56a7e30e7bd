import type { InferenceSession } from 'onnxruntime-node';
import type { ModelConfig } from './bundle.js';
import { EngineError } from './errors.js';

// Checks an opened graph against docs/BUNDLE.md: names, element types, ranks and, where the
// graph fixes a dimension, its size against config.json. A mismatch fails start-up with the
// file name and the problem, instead of a shape error on the first request.

type FloatKind = 'float';
type ElementKind = FloatKind | 'int64';

interface EdgeSpec {
  readonly name: string;
  readonly kind: ElementKind;
  /** Expected dims; null = any size. Rank is checked when the graph declares a shape. */
  readonly dims: ReadonlyArray<number | null>;
  readonly optional?: boolean;
}

export interface GraphSpec {
  readonly inputs: readonly EdgeSpec[];
  readonly outputs: readonly EdgeSpec[];
}

export function visionEncoderSpec(config: ModelConfig): GraphSpec {
  const S = config.cropSize;
  const H = config.hiddenSize;
  return {
    inputs: [{ name: 'pixel_values', kind: 'float', dims: [null, 3, S, S] }],
    outputs: [
      { name: 'image_features', kind: 'float', dims: [null, config.cellsPerSide ** 2, H] },
      { name: 'row_separator', kind: 'float', dims: [H] },
    ],
  };
}

export function embedTokensSpec(config: ModelConfig): GraphSpec {
  return {
    inputs: [{ name: 'input_ids', kind: 'int64', dims: [null, null] }],
    outputs: [{ name: 'inputs_embeds', kind: 'float', dims: [null, null, config.hiddenSize] }],
  };
}

export function decoderSpec(config: ModelConfig): GraphSpec {
  const kv = [null, config.numKeyValueHeads, null, config.headDim];
  const inputs: EdgeSpec[] = [
    { name: 'inputs_embeds', kind: 'float', dims: [null, null, config.hiddenSize] },
    { name: 'attention_mask', kind: 'int64', dims: [null, null] },
    { name: 'position_ids', kind: 'int64', dims: [null, null] },
    { name: 'num_logits_to_keep', kind: 'int64', dims: [], optional: true },
  ];
  const outputs: EdgeSpec[] = [
    { name: 'logits', kind: 'float', dims: [null, null, config.vocabSize] },
  ];
  for (let i = 0; i < config.numLayers; i++) {
    for (const part of ['key', 'value']) {
      inputs.push({ name: `past_key_values.${i}.${part}`, kind: 'float', dims: kv });
      outputs.push({ name: `present.${i}.${part}`, kind: 'float', dims: kv });
    }
  }
  // A cached prefix read in place (docs/BUNDLE.md); graphs exported before it lack these inputs.
  for (let i = 0; i < config.numLayers; i++) {
    for (const part of ['key', 'value']) {
      inputs.push({
        name: `prefix_key_values.${i}.${part}`,
        kind: 'float',
        dims: kv,
        optional: true,
      });
    }
  }
  return { inputs, outputs };
}

function describeType(kind: ElementKind): string {
  return kind === 'float' ? 'float32 or float16' : kind;
}

function checkEdges(
  direction: 'input' | 'output',
  specs: readonly EdgeSpec[],
  metadata: readonly InferenceSession.ValueMetadata[],
): string[] {
  const problems: string[] = [];
  const byName = new Map(metadata.map((m) => [m.name, m]));
  for (const spec of specs) {
    const meta = byName.get(spec.name);
    if (meta === undefined) {
      if (!spec.optional) problems.push(`missing ${direction} "${spec.name}"`);
      continue;
    }
    if (!meta.isTensor) {
      problems.push(`${direction} "${spec.name}" is not a tensor`);
      continue;
    }
    const typeOk =
      spec.kind === 'float'
        ? meta.type === 'float32' || meta.type === 'float16'
        : meta.type === spec.kind;
    if (!typeOk)
      problems.push(
        `${direction} "${spec.name}" is ${meta.type}, expected ${describeType(spec.kind)}`,
      );
    // A declared shape of [] is either a scalar or an unknown rank; only a non-empty one is checked.
    if (meta.shape.length > 0 || spec.dims.length === 0) {
      if (meta.shape.length !== spec.dims.length && meta.shape.length > 0) {
        problems.push(
          `${direction} "${spec.name}" has rank ${meta.shape.length}, expected ${spec.dims.length}`,
        );
        continue;
      }
      spec.dims.forEach((want, axis) => {
        const have = meta.shape[axis];
        if (want !== null && typeof have === 'number' && have !== want) {
          problems.push(
            `${direction} "${spec.name}" has size ${have} on axis ${axis}, config says ${want}`,
          );
        }
      });
    }
  }
  if (direction === 'input') {
    const known = new Set(specs.map((s) => s.name));
    for (const meta of metadata) {
      if (!known.has(meta.name))
        problems.push(`unexpected input "${meta.name}" (the engine cannot feed it)`);
    }
  }
  return problems;
}

/** Throws EngineError('INVALID_BUNDLE') listing every way the graph differs from the contract. */
export function checkGraph(
  file: string,
  spec: GraphSpec,
  session: Pick<InferenceSession, 'inputMetadata' | 'outputMetadata'>,
): void {
  const problems = [
    ...checkEdges('input', spec.inputs, session.inputMetadata),
    ...checkEdges('output', spec.outputs, session.outputMetadata),
  ];
  if (problems.length > 0) {
    const shown = problems.slice(0, 4).join('; ');
    const more = problems.length > 4 ? `; and ${problems.length - 4} more` : '';
    throw new EngineError('INVALID_BUNDLE', `model bundle: ${file}: ${shown}${more}`);
  }
}

/** The float element type of an edge ('float32' | 'float16'), read from the session. */
export function floatTypeOf(
  metadata: readonly InferenceSession.ValueMetadata[],
  name: string,
): 'float32' | 'float16' {
  const meta = metadata.find((m) => m.name === name);
  return meta !== undefined && meta.isTensor && meta.type === 'float16' ? 'float16' : 'float32';
}
