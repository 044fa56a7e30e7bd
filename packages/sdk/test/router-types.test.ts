import { describe, expectTypeOf, it } from 'vitest';
import type { inferRouterInputs, inferRouterOutputs } from '@trpc/server';
import type { AskRequestInput, AskResponse, AskStreamEvent, ServerInfo } from '@magma-som/schemas';
import type { AppRouter } from '../src/app-router.js';
import type { MagmaClient } from '../src/index.js';
import type { ContractRouter } from './support/contract-router.js';

type Inputs = inferRouterInputs<AppRouter>;
type Outputs = inferRouterOutputs<AppRouter>;

// These are checked by `tsc` (the package's typecheck): the server's router and the SDK's
// public types, both written with the shared schemas, must agree exactly.
describe('the server router and the SDK agree on types', () => {
  it('ask and askUpload take the contract request and return the contract response', () => {
    expectTypeOf<Inputs['ask']>().toEqualTypeOf<AskRequestInput>();
    expectTypeOf<Inputs['askUpload']>().toEqualTypeOf<FormData>();
    expectTypeOf<Outputs['ask']>().toEqualTypeOf<AskResponse>();
    expectTypeOf<Outputs['askUpload']>().toEqualTypeOf<AskResponse>();
    expectTypeOf<Awaited<ReturnType<MagmaClient['ask']>>>().toEqualTypeOf<Outputs['ask']>();
  });

  it('askStream yields the contract events and info returns ServerInfo', () => {
    expectTypeOf<Outputs['askStream']>().toExtend<AsyncIterable<AskStreamEvent>>();
    expectTypeOf<ReturnType<MagmaClient['askStream']>>().toExtend<AsyncIterable<AskStreamEvent>>();
    expectTypeOf<Outputs['info']>().toEqualTypeOf<ServerInfo>();
  });
});

describe("the fault server's stand-in router", () => {
  it('has the same procedures, inputs and outputs as the server', () => {
    expectTypeOf<inferRouterInputs<ContractRouter>>().toEqualTypeOf<Inputs>();
    expectTypeOf<inferRouterOutputs<ContractRouter>>().toEqualTypeOf<Outputs>();
  });
});
