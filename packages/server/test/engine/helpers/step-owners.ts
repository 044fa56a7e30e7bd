import type { StepInput, StepOutput } from '../../../src/engine/magma-model.js';

/**
 * Follows sequences through decoder runs, for tests that record each sequence's logits: a run's
 * input continues the sequence whose earlier output it feeds back, either as its past or (the
 * first step after a prefill, when the prompt became the sequence's prefix) as its prefix.
 * Anything else (no cache, or a prefix from the prefix cache) starts a new sequence.
 */
export class StepOwners {
  private readonly owners = new Map<unknown, number>();
  private count = 0;

  /** The owner of each input of a run, numbered from 1 in the order sequences start; records the outputs. */
  record(inputs: readonly StepInput[], outputs: readonly StepOutput[]): number[] {
    return inputs.map((input, b) => {
      const known = this.ownerOf(input);
      const owner = known ?? ++this.count;
      const out = outputs[b]!;
      this.owners.set(out.present, owner);
      if (inputs.length === 1) this.owners.set(out.present.tensors, owner);
      return owner;
    });
  }

  /** Whether the input starts a sequence (a prefill). */
  startsSequence(input: StepInput): boolean {
    return this.ownerOf(input) === undefined;
  }

  private ownerOf(input: StepInput): number | undefined {
    if (input.past !== null) return this.owners.get(input.past);
    if (input.prefix) return this.owners.get(input.prefix.tensors);
    return undefined;
  }
}
