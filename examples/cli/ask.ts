import { writeFile } from 'node:fs/promises';
import { basename, dirname, extname, join } from 'node:path';
import { createClient } from '@magma-som/sdk';
import type { AskResponse, MarkInput } from '@magma-som/sdk';
import { Progress } from './progress.js';

export interface AskCommand {
  readonly image: string;
  readonly marks: readonly MarkInput[];
  readonly prompt: string;
  readonly url: string;
  readonly apiKey: string | undefined;
  readonly maxTokens: number | undefined;
  readonly json: boolean;
  /** Save the image the model saw as <name>.marked.<format> beside the input. */
  readonly save: boolean;
}

/** Where the marked copy of `image` goes: photo.jpg -> photo.marked.png. */
export function markedImagePath(image: string, format: string): string {
  return join(dirname(image), `${basename(image, extname(image))}.marked.${format}`);
}

/** Asks one question, streaming the answer into a progress line; prints the answer (or JSON). */
export async function runAsk(command: AskCommand): Promise<void> {
  await using client = createClient({ baseUrl: command.url, apiKey: command.apiKey });
  const progress = new Progress(`asking ${command.url}`);
  let response: AskResponse | undefined;
  try {
    const events = client.askStream({
      image: command.image,
      marks: command.marks,
      prompt: command.prompt,
      returnMarkedImage: command.save,
      ...(command.maxTokens === undefined ? {} : { options: { maxTokens: command.maxTokens } }),
    });
    for await (const event of events) {
      if (event.type === 'token') progress.append(event.text);
      else response = event.response;
    }
  } finally {
    progress.stop();
  }
  if (response === undefined) throw new Error('the server sent no answer');

  let savedTo: string | undefined;
  if (command.save && response.markedImage) {
    savedTo = markedImagePath(command.image, response.markedImage.format);
    await writeFile(savedTo, Buffer.from(response.markedImage.data, 'base64'));
  }

  if (command.json) {
    // The marked image is a file now; its base64 would only bury the answer.
    const { markedImage, ...rest } = response;
    const marked = markedImage && {
      format: markedImage.format,
      width: markedImage.width,
      height: markedImage.height,
    };
    console.log(
      JSON.stringify({ ...rest, markedImage: marked && { ...marked, path: savedTo } }, null, 2),
    );
    return;
  }
  console.log(response.answer);
  if (savedTo) console.error(`marked image: ${savedTo}`);
}
