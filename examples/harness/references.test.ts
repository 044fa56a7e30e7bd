import { createClient } from '@magma-som/sdk';
import type { AskResponse, MagmaClient } from '@magma-som/sdk';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { classicQuestions } from '../../tools/tiny-model/questions.js';
import { startBundledServer } from '../test-support/bundled-server.js';
import type { RunningServer } from '../test-support/bundled-server.js';
import { renderMarkedScene } from './scene.js';
import type { MarkedScene } from './scene.js';

// `response.references` on real answers of the bundled model: every "#N" / "Mark: N" in the
// answer comes back parsed, at its offset, with the mark that was sent under that label. The
// harness asserts the bundled model's answers to these questions, so the answers that name marks
// must name the ones the expected answers name, and the check is never vacuous.

let running: RunningServer;
let client: MagmaClient;
let scene: MarkedScene;
const asked: { expected: string; response: AskResponse }[] = [];

beforeAll(async () => {
  running = await startBundledServer();
  client = createClient({ baseUrl: running.url });
  scene = await renderMarkedScene();
  for (const { question, answer } of classicQuestions(scene.description)) {
    const response = await client.ask({
      image: scene.png,
      marks: scene.marks,
      prompt: question,
      options: { maxTokens: 64 },
    });
    asked.push({ expected: answer, response });
  }
});

afterAll(async () => {
  await client?.close();
  await running?.server.shutdown();
});

/** Labels named in a text, found independently of the server's parser. */
function namedLabels(text: string): { label: number; text: string; offset: number }[] {
  return [...text.matchAll(/#(\d+)|Mark: (\d+)/g)].map((m) => ({
    label: Number(m[1] ?? m[2]),
    text: m[0],
    offset: m.index,
  }));
}

describe('mark references in real answers', () => {
  it('lists every mark the answer names, where it names it, with the mark sent', () => {
    for (const { response } of asked) {
      const refs = response.references;
      expect(refs.map(({ label, text, offset }) => ({ label, text, offset }))).toEqual(
        namedLabels(response.answer),
      );
      for (const ref of refs) {
        expect(response.answer.slice(ref.offset, ref.offset + ref.text.length)).toBe(ref.text);
        const sent = scene.marks.find((mark) => mark.label === ref.label);
        if (sent === undefined) expect(ref.mark).toBeUndefined();
        else expect(ref.mark).toEqual(sent);
      }
    }
  });

  it('names the marks the expected answers name (describe, spatial)', () => {
    const naming = asked.filter(({ expected }) => namedLabels(expected).length > 0);
    expect(naming.length).toBeGreaterThanOrEqual(2);
    for (const { expected, response } of naming) {
      expect(response.references.map((ref) => ref.label)).toEqual(
        namedLabels(expected).map((ref) => ref.label),
      );
      expect(response.references.every((ref) => ref.mark !== undefined)).toBe(true);
    }
  });
});
