/**
 * Prompt ids for tools/magma_onnx/make_magma8b_fixture.py, made with the bundle's tokenizer files
 * exactly as the engine makes them (tools/tiny-model/prompt-ids.ts: chat template, double BOS).
 *
 *   node --import tsx tools/magma_onnx/prompt-ids.ts <tokenizer folder> '<question>' ...
 *
 * Prints a JSON array: one id list per question.
 */
import { PromptIdsBuilder } from '../tiny-model/prompt-ids.js';

const [dir, ...questions] = process.argv.slice(2);
if (dir === undefined || questions.length === 0) {
  console.error('usage: prompt-ids.ts <tokenizer folder> <question>...');
  process.exit(2);
}
const builder = new PromptIdsBuilder(dir);
console.log(JSON.stringify(questions.map((q) => builder.promptIds(q))));
