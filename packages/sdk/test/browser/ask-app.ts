// A minimal browser app, as a user would write one: fetch an image, ask about it and stream the
// answer with @magma-som/sdk. browser.test.ts bundles it with esbuild for the browser and runs
// it in Chromium; the page's query string says where the server is and what to ask.
import { createClient } from '@magma-som/sdk';
import type { MarkInput } from '@magma-som/sdk';

/** What the page leaves in `window.askResult` for the test to read. */
export interface AskAppResult {
  tokens: string[];
  answer?: string;
  error?: string;
}

// Typed by hand: the SDK's tsconfig has no DOM library.
const page = globalThis as unknown as { location: { search: string }; askResult?: AskAppResult };

async function main(): Promise<AskAppResult> {
  const params = new URLSearchParams(page.location.search);
  const client = createClient({
    baseUrl: params.get('server') ?? '',
    apiKey: params.get('apiKey') ?? undefined,
  });
  const image = await (await fetch(params.get('image') ?? '')).blob();
  const tokens: string[] = [];
  for await (const event of client.askStream({
    image,
    marks: JSON.parse(params.get('marks') ?? '[]') as MarkInput[],
    prompt: params.get('prompt') ?? '',
  })) {
    if (event.type === 'token') tokens.push(event.text);
    else return { tokens, answer: event.response.answer };
  }
  return { tokens, error: 'the stream ended without an answer' };
}

main().then(
  (result) => (page.askResult = result),
  (error: unknown) =>
    (page.askResult = {
      tokens: [],
      error: `${(error as Error).name}: ${(error as Error).message}`,
    }),
);
