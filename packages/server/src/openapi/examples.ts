/**
 * The examples of the OpenAPI document. Every request example is sent to a real server by
 * test/http-api/openapi.test.ts, so they must stay valid requests.
 */

/** A 128x96 PNG: a light background with a red 40x40 square at (16,16). */
export const EXAMPLE_IMAGE_DATA_URL =
  'data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAIAAAABgCAMAAADipIp7AAAABlBMVEXIHijc5vDTgOEGAAAACXBIWXMAAAPoAAAD6AG1e1JrAAAAU0lEQVRo3u3YsREAMAjEsGf/pbMCHVyQJ1Dt1HABAAAAAAAAWAdIMwAAAAAAAAAAAAAAAAAAAAAAAIB/AU4pAAAAAAAAAAAAAAAAAAAAAADAOcADw0UpwV8lnsIAAAAASUVORK5CYII=';

const MARKS = [
  { label: 1, x1: 10, y1: 10, x2: 62, y2: 62 },
  { label: 2, x1: 70, y1: 30, x2: 120, y2: 90 },
];

export function askExamples() {
  return {
    ask: {
      summary: 'Ask about a mark',
      value: {
        image: EXAMPLE_IMAGE_DATA_URL,
        prompt: 'What color is object #1?',
        marks: MARKS,
        options: { maxTokens: 8 },
      },
    },
    markedImage: {
      summary: 'Also return the image as the model saw it',
      value: {
        image: EXAMPLE_IMAGE_DATA_URL,
        prompt: 'Which mark is on the left?',
        marks: MARKS,
        options: { maxTokens: 8 },
        returnMarkedImage: true,
        markedImageFormat: 'jpeg',
      },
    },
  };
}

export function batchExamples() {
  const { ask, markedImage } = askExamples();
  return {
    batch: {
      summary: 'Two asks as one batch, safe to submit again',
      value: {
        items: [ask.value, { ...markedImage.value, returnMarkedImage: false }],
        idempotencyKey: 'labels-2026-12-01',
      },
    },
  };
}

export function chatExamples(model: string) {
  const message = (text: string) => ({
    role: 'user',
    content: [
      { type: 'text', text },
      { type: 'image_url', image_url: { url: EXAMPLE_IMAGE_DATA_URL } },
    ],
  });
  return {
    marks: {
      summary: 'A question about marks (the `marks` extension)',
      value: {
        model,
        messages: [message('What color is object #1?')],
        marks: MARKS,
        max_tokens: 8,
      },
    },
    streamed: {
      summary: 'Streamed, with usage in the last chunk',
      value: {
        model,
        messages: [message('Describe the marked objects.')],
        marks: MARKS,
        max_completion_tokens: 8,
        stream: true,
        stream_options: { include_usage: true },
      },
    },
    noMarks: {
      summary: 'Without marks: the image is used as it is',
      value: { model, messages: [message('What is in the image?')], max_tokens: 8, seed: 7 },
    },
  };
}
