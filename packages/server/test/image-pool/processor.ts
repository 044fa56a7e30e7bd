import type { ProcessorSettings } from '../../src/engine/image-processor.js';

/** magma-tiny-som's processor (preprocessor_config.json): 128 px crops, up to 4, CLIP normalisation. */
export const TINY_PROCESSOR: ProcessorSettings = {
  cropSize: 128,
  maxCrops: 4,
  imageMean: [0.48145466, 0.4578275, 0.40821073],
  imageStd: [0.26862954, 0.26130258, 0.27577711],
};
