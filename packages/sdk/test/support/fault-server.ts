import { createServer } from 'node:http';
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { createHTTPHandler } from '@trpc/server/adapters/standalone';
import { errorData } from '@magma-som/schemas';
import type {
  AskResponse,
  AskStreamEvent,
  ErrorCode,
  ErrorData,
  ServerInfo,
} from '@magma-som/schemas';
import { contractRouter } from './contract-router.js';
import type { ContractHandlers } from './contract-router.js';

/** What the server does with one request instead of answering it properly. */
export type Fault = (req: IncomingMessage, res: ServerResponse) => void;

export interface RecordedRequest {
  readonly method: string;
  readonly path: string;
  readonly headers: IncomingMessage['headers'];
  /** performance.now() when the request arrived. */
  readonly at: number;
}

/**
 * A tRPC server of the contract router that misbehaves on purpose: each request takes the next
 * queued fault, and is served properly by tRPC's own handler once the queue is empty.
 */
export class FaultServer {
  readonly requests: RecordedRequest[] = [];
  readonly faults: Fault[] = [];
  /** TCP connections accepted so far. */
  connections = 0;
  handlers: ContractHandlers = defaultHandlers();
  readonly #server: Server;
  readonly #sockets = new Set<Socket>();

  private constructor() {
    const trpc = createHTTPHandler({
      router: contractRouter,
      basePath: '/trpc/',
      createContext: ({ req }) => ({ handlers: this.handlers, headers: req.headers }),
    });
    this.#server = createServer((req, res) => {
      this.requests.push({
        method: req.method ?? '',
        path: req.url ?? '',
        headers: req.headers,
        at: performance.now(),
      });
      const fault = this.faults.shift();
      if (fault) fault(req, res);
      else trpc(req, res);
    });
    this.#server.on('connection', (socket) => {
      this.connections++;
      this.#sockets.add(socket);
      socket.on('close', () => this.#sockets.delete(socket));
    });
  }

  static async start(port = 0): Promise<FaultServer> {
    const server = new FaultServer();
    await server.listen(port);
    return server;
  }

  async listen(port: number): Promise<void> {
    await new Promise<void>((resolve, reject) => {
      this.#server.once('error', reject);
      this.#server.listen(port, '127.0.0.1', () => resolve());
    });
  }

  get url(): string {
    return `http://127.0.0.1:${(this.#server.address() as AddressInfo).port}`;
  }

  /** Queues faults for the next requests, in order. */
  fail(...faults: Fault[]): this {
    this.faults.push(...faults);
    return this;
  }

  async close(): Promise<void> {
    for (const socket of this.#sockets) socket.destroy();
    await new Promise<void>((resolve) => this.#server.close(() => resolve()));
  }
}

/** A port nothing listens on (it was free a moment ago). */
export async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  const { port } = server.address() as AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

/** A tRPC error response carrying the contract's ErrorData, as the real server sends it. */
export function trpcError(
  code: ErrorCode,
  options: { headers?: Record<string, string>; extra?: Partial<ErrorData>; status?: number } = {},
): Fault {
  return (req, res) => {
    const data = {
      ...errorData(code, `${code} from the fault server`),
      requestId: 'req-fault',
      ...options.extra,
    };
    const body = {
      error: { message: data.message, code: data.httpStatus >= 500 ? -32603 : -32600, data },
    };
    drain(req, () => {
      res.writeHead(options.status ?? data.httpStatus, {
        'content-type': 'application/json',
        'x-request-id': data.requestId ?? '',
        ...options.headers,
      });
      res.end(JSON.stringify(body));
    });
  };
}

/** A response that is not tRPC-shaped, as a proxy in front of the server might send. */
export function rawResponse(
  status: number,
  body: string,
  headers: Record<string, string> = {},
): Fault {
  return (req, res) =>
    drain(req, () => {
      res.writeHead(status, { 'content-type': 'text/html', ...headers });
      res.end(body);
    });
}

/** Reads the request and never answers. */
export function hang(): Fault {
  return (req) => drain(req, () => undefined);
}

/** Drops the connection without an answer (the client sees a reset / "other side closed"). */
export function reset(): Fault {
  return (req) => drain(req, () => req.socket.destroy());
}

function drain(req: IncomingMessage, then: () => void): void {
  req.resume();
  req.on('end', then);
}

export function sampleResponse(answer = 'Mark: 2'): AskResponse {
  return {
    requestId: 'req-ok',
    answer,
    references: [{ label: 2, text: 'Mark: 2', offset: 0 }],
    finishReason: 'stop',
    usage: {
      promptTokens: 300,
      imageTokens: 272,
      completionTokens: 4,
      totalTokens: 304,
      cachedTokens: 0,
    },
    timings: {
      queueMs: 0,
      imageMs: 1,
      preprocessMs: 1,
      visionMs: 1,
      prefillMs: 1,
      decodeMs: 1,
      totalMs: 5,
    },
    model: { id: 'fault-server', revision: 'test' },
    grid: { rows: 1, cols: 1 },
  };
}

export function sampleInfo(): ServerInfo {
  return {
    version: '0.0.0-test',
    model: {
      id: 'fault-server',
      revision: 'test',
      executionProvider: 'cpu',
      dtype: 'fp32',
      cropSize: 128,
      maxCrops: 4,
    },
    ready: { ready: true, modelLoaded: true, warm: true, shuttingDown: false },
    queue: { depth: 0, inFlight: 0, capacity: 32 },
    limits: {
      maxImageBytes: 20 * 1024 * 1024,
      maxUploadBytes: 50 * 1024 * 1024,
      maxImagePixels: 40_000_000,
      maxMarks: 64,
      maxPromptChars: 4000,
      maxTokens: 1024,
      requestTimeoutMs: 120_000,
    },
  };
}

export function defaultHandlers(): ContractHandlers {
  return {
    ask: async () => sampleResponse(),
    askStream: async function* (): AsyncGenerator<AskStreamEvent> {
      yield { type: 'token', text: 'Mark' };
      yield { type: 'token', text: ': 2' };
      yield { type: 'done', response: sampleResponse() };
    },
    askUpload: async (image) => sampleResponse(`uploaded ${image.size} bytes`),
    info: () => sampleInfo(),
  };
}

/** A JSON response of any shape (plain routes like /health and /ready). */
export function jsonResponse(
  status: number,
  body: unknown,
  headers: Record<string, string> = {},
): Fault {
  return (req, res) =>
    drain(req, () => {
      res.writeHead(status, { 'content-type': 'application/json', ...headers });
      res.end(JSON.stringify(body));
    });
}

/** Sends the status line and part of a body, then stalls: a timeout must cover the body too. */
export function hangInBody(): Fault {
  return (req, res) =>
    drain(req, () => {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.write('{"result":{"data":');
    });
}
