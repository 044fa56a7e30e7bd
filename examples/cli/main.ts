/**
 * magma-som: Set-of-Mark questions from the command line, built on @magma-som/sdk: one at a
 * time (ask) or a folder or manifest of them as a batch job (batch).
 * Exit codes: 0 answered, 1 the request (or an item of the batch) failed, 2 bad command line,
 * 130 a batch interrupted by Ctrl-C.
 */
import { parseArgs } from 'node:util';
import { MagmaError } from '@magma-som/sdk';
import { runAsk } from './ask.js';
import { runBatch } from './batch/run-batch.js';
import { UsageError, parseMarkOption } from './mark-option.js';

const USAGE = `Usage: magma-som ask <image> [--mark [LABEL:]x1,y1,x2,y2]... "<question>"
       magma-som batch <folder | manifest.jsonl> --out results.jsonl

ask: draws numbered boxes on the image, asks a magma-som server about them, prints the answer
and saves the image the model saw as <image name>.marked.png beside it.

batch: submits many asks as one batch job (the server needs MAGMA_REDIS_URL), shows a
progress bar and appends one JSON line per result to --out. A manifest.jsonl has one ask per
line: {"image": "a.png", "marks": [[x1,y1,x2,y2]], "question": "What is #1?", "id": "a"}.
A folder asks about every image in it, with the marks and questions of a sidecar <name>.json
({"marks": [...], "questions": [...]}) or of --mark and --question. Interrupted (Ctrl-C), the
same command run again joins the same batch and writes only the missing results.

Options:
  --mark [LABEL:]x1,y1,x2,y2  a box in pixels; repeat for more. Without LABEL, marks are
                              numbered by position: the first --mark is #1, the second #2
  --url URL                   server (env MAGMA_URL, default http://127.0.0.1:8080)
  --api-key KEY               API key, sent as a bearer token (env MAGMA_API_KEY)
  --max-tokens N              cap on new tokens in the answer
  --json                      ask: print the whole response as JSON
  --no-save                   ask: do not save the marked image
  --out FILE                  batch: the results file (JSON lines), appended to
  --question TEXT             batch: a question for folder images without a sidecar; repeat
  --poll-ms N                 batch: time between progress polls (default 500)
  -h, --help                  show this text

Examples:
  magma-som ask screen.png --mark 10,10,200,200 --mark 220,40,400,120 "What is #1?"
  magma-som batch examples/batch/manifest.jsonl --out results.jsonl
  magma-som batch screenshots/ --mark 0,0,100,40 --question "What does #1 say?" --out out.jsonl`;

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
      out: { type: 'string' },
      question: { type: 'string', multiple: true, default: [] },
      'poll-ms': { type: 'string', default: '500' },
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
  const pollMs = values['poll-ms'];
  if (!/^[1-9]\d*$/.test(pollMs)) {
    throw new UsageError(`--poll-ms must be a whole number >= 1, got ${JSON.stringify(pollMs)}`);
  }
  return {
    values,
    command,
    image,
    words,
    prompt: words.join(' '),
    maxTokens: maxTokens === undefined ? undefined : Number(maxTokens),
    pollMs: Number(pollMs),
  };
}

/** Runs a batch; Ctrl-C (or SIGTERM) stops waiting and leaves the batch to a later run. */
async function batchCommand(
  parsed: ReturnType<typeof parseCommandLine>,
  source: string | undefined,
): Promise<number> {
  const { values } = parsed;
  if (!source || parsed.words.length > 0) {
    throw new UsageError('batch needs one folder or manifest.jsonl');
  }
  if (!values.out) throw new UsageError('batch needs --out results.jsonl');
  const interrupt = new AbortController();
  const stop = (): void => interrupt.abort(new Error('interrupted'));
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
  try {
    return await runBatch({
      source,
      out: values.out,
      defaults: { marks: values.mark.map(parseMarkOption), questions: values.question },
      url: values.url,
      apiKey: values['api-key'],
      maxTokens: parsed.maxTokens,
      pollMs: parsed.pollMs,
      signal: interrupt.signal,
    });
  } catch (error) {
    // Ctrl-C before the batch was made (reading images, creating it): nothing to resume yet.
    if (!interrupt.signal.aborted) throw error;
    console.error('interrupted');
    return 130;
  } finally {
    process.off('SIGINT', stop);
    process.off('SIGTERM', stop);
  }
}

async function main(args: readonly string[]): Promise<number> {
  try {
    const parsed = parseCommandLine(args);
    const { values, command, image, prompt, maxTokens } = parsed;
    if (values.help || command === undefined || command === 'help') {
      console.log(USAGE);
      return 0;
    }
    if (command === 'batch') return await batchCommand(parsed, image);
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
