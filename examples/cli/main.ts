/**
 * magma-som: one-off Set-of-Mark questions from the command line, built on @magma-som/sdk.
 * Exit codes: 0 answered, 1 the request failed, 2 bad command line.
 */
import { parseArgs } from 'node:util';
import { MagmaError } from '@magma-som/sdk';
import { runAsk } from './ask.js';
import { UsageError, parseMarkOption } from './mark-option.js';

const USAGE = `Usage: magma-som ask <image> [--mark [LABEL:]x1,y1,x2,y2]... "<question>"

Draws numbered boxes on the image, asks a magma-som server about them, prints the answer
and saves the image the model saw as <image name>.marked.png beside it.

Options:
  --mark [LABEL:]x1,y1,x2,y2  a box in pixels; repeat for more. Without LABEL, marks are
                              numbered by position: the first --mark is #1, the second #2
  --url URL                   server (env MAGMA_URL, default http://127.0.0.1:8080)
  --api-key KEY               API key, sent as a bearer token (env MAGMA_API_KEY)
  --max-tokens N              cap on new tokens in the answer
  --json                      print the whole response as JSON
  --no-save                   do not save the marked image
  -h, --help                  show this text

Example:
  magma-som ask screen.png --mark 10,10,200,200 --mark 220,40,400,120 "What is #1?"`;

function parseCommandLine(args: readonly string[]) {
  const { values, positionals } = parseArgs({
    args: [...args],
    allowPositionals: true,
    options: {
      mark: { type: 'string', multiple: true, default: [] },
      url: { type: 'string', default: process.env.MAGMA_URL || 'http://127.0.0.1:8080' },
      'api-key': { type: 'string', default: process.env.MAGMA_API_KEY || undefined },
      'max-tokens': { type: 'string' },
      json: { type: 'boolean', default: false },
      'no-save': { type: 'boolean', default: false },
      help: { type: 'boolean', short: 'h', default: false },
    },
  });
  const [command, image, ...words] = positionals;
  if (!URL.canParse(values.url)) {
    throw new UsageError(`--url ${JSON.stringify(values.url)} is not a URL`);
  }
  const maxTokens = values['max-tokens'];
  if (maxTokens !== undefined && !/^[1-9]\d*$/.test(maxTokens)) {
    throw new UsageError(
      `--max-tokens must be a whole number >= 1, got ${JSON.stringify(maxTokens)}`,
    );
  }
  return {
    values,
    command,
    image,
    prompt: words.join(' '),
    maxTokens: maxTokens === undefined ? undefined : Number(maxTokens),
  };
}

async function main(args: readonly string[]): Promise<number> {
  try {
    const { values, command, image, prompt, maxTokens } = parseCommandLine(args);
    if (values.help || command === undefined || command === 'help') {
      console.log(USAGE);
      return 0;
    }
    if (command !== 'ask') throw new UsageError(`unknown command ${JSON.stringify(command)}`);
    if (!image || !prompt) throw new UsageError('ask needs an image and a question');
    await runAsk({
      image,
      prompt,
      marks: values.mark.map(parseMarkOption),
      url: values.url,
      apiKey: values['api-key'],
      maxTokens,
      json: values.json,
      save: !values['no-save'],
    });
    return 0;
  } catch (error) {
    // parseArgs throws TypeErrors with a code for unknown or malformed options.
    if (
      error instanceof UsageError ||
      (error as { code?: string }).code?.startsWith('ERR_PARSE_ARGS')
    ) {
      console.error(`magma-som: ${(error as Error).message}\n\n${USAGE}`);
      return 2;
    }
    if (error instanceof MagmaError) {
      const where = error.requestId ? `, request ${error.requestId}` : '';
      console.error(`magma-som: ${error.message} (${error.code}${where})`);
      if (error.code === 'CONNECTION_ERROR') {
        console.error('Is a server running there? Start one with: npm start');
      }
      return 1;
    }
    console.error(`magma-som: ${error instanceof Error ? error.message : String(error)}`);
    return 1;
  }
}

process.exitCode = await main(process.argv.slice(2));
