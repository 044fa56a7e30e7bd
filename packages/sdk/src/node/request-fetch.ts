import { STATUS_CODES } from 'node:http';
import { brotliDecompressSync, gunzipSync, inflateSync } from 'node:zlib';

// Node's fetch is undici's fetch: the WHATWG layers (Request and Response objects, web streams,
// abort plumbing) over undici's HTTP client, its global dispatcher. Those layers cost about three
// times the CPU of the client's own request() for a JSON call (0.34-0.38 ms against 0.11-0.13 ms
// with the Response built here; BENCHMARKS.md, "Hits without the Fetch-API layers").
// This sends a call whose body is text or bytes through the same dispatcher's request() and
// answers a real Response made from the whole body: the same pool, keep-alive and proxy as fetch.
// Everything else goes to the runtime's fetch unchanged.

/** Where undici and Node's fetch keep the global dispatcher (what setGlobalDispatcher sets). */
const GLOBAL_DISPATCHER = Symbol.for('undici.globalDispatcher.1');

const REDIRECTS = new Set([301, 302, 303, 307, 308]);

interface RequestResult {
  readonly statusCode: number;
  readonly headers: Record<string, string | string[] | undefined>;
  readonly body: { arrayBuffer(): Promise<ArrayBuffer>; dump?(): Promise<void> };
}

interface RequestDispatcher {
  request(options: {
    origin: string;
    path: string;
    method: string;
    headers: Record<string, string>;
    body: string | Uint8Array | null;
    signal?: AbortSignal;
  }): Promise<RequestResult>;
}

type FetchInit = RequestInit & { dispatcher?: unknown };

/**
 * A fetch for Node that sends text and byte bodies through undici's request(). Falls back to
 * the global fetch for: Request inputs, FormData and stream bodies, URLs with credentials, a
 * `globalThis.fetch` that is not Node's own (a test's stub, msw: they keep intercepting), a
 * dispatcher without request(), the first call before Node has made its global dispatcher, and
 * a redirect (fetch follows it as it would have). Network failures reject like fetch's
 * (TypeError "fetch failed" with the cause), aborts with the signal's reason.
 */
export const requestFetch: typeof fetch = async (input, init?: FetchInit) => {
  const dispatcher = requestDispatcher(init?.dispatcher);
  const body = plainBody(init?.body);
  const url = typeof input === 'string' || input instanceof URL ? new URL(input) : undefined;
  if (
    dispatcher === undefined ||
    body === undefined ||
    url === undefined ||
    url.username !== '' ||
    url.password !== '' ||
    !isNodeFetch(globalThis.fetch)
  )
    return globalThis.fetch(input, init);

  const signal = init?.signal ?? undefined;
  signal?.throwIfAborted();
  const method = (init?.method ?? 'GET').toUpperCase();
  let result: RequestResult;
  let bytes = new ArrayBuffer(0);
  let redirected = false;
  try {
    result = await dispatcher.request({
      origin: url.origin,
      path: `${url.pathname}${url.search}`,
      method,
      headers: headerRecord(init?.headers),
      body,
      ...(signal ? { signal } : {}),
    });
    redirected = REDIRECTS.has(result.statusCode) && result.headers['location'] !== undefined;
    if (redirected) await result.body.dump?.();
    else bytes = await result.body.arrayBuffer();
  } catch (error) {
    if (signal?.aborted) throw signal.reason;
    throw new TypeError('fetch failed', { cause: error });
  }
  if (redirected) return globalThis.fetch(input, init);
  return responseOf(result, method === 'HEAD' ? null : bytes);
};

function requestDispatcher(given: unknown): RequestDispatcher | undefined {
  const dispatcher =
    given ?? (globalThis as Record<symbol, unknown>)[GLOBAL_DISPATCHER] ?? undefined;
  const request = (dispatcher as Partial<RequestDispatcher> | undefined)?.request;
  return typeof request === 'function' ? (dispatcher as RequestDispatcher) : undefined;
}

let checkedFetch: typeof fetch | undefined;
let checkedIsNode = false;

/** Whether this fetch is Node's own (its source loads Node's internal undici), remembered per function. */
function isNodeFetch(candidate: typeof fetch): boolean {
  if (candidate !== checkedFetch) {
    checkedFetch = candidate;
    checkedIsNode = Function.prototype.toString
      .call(candidate)
      .includes("'internal/deps/undici/undici'");
  }
  return checkedIsNode;
}

/** A body request() takes as it is: text, bytes or none; undefined for any other kind. */
function plainBody(body: RequestInit['body']): string | Uint8Array | null | undefined {
  if (body === undefined || body === null) return null;
  return typeof body === 'string' || body instanceof Uint8Array ? body : undefined;
}

function headerRecord(headers: RequestInit['headers']): Record<string, string> {
  if (headers === undefined) return {};
  if (headers instanceof Headers || Array.isArray(headers))
    return Object.fromEntries(headers as Iterable<[string, string]>);
  return headers as Record<string, string>;
}

function responseOf(result: RequestResult, bytes: ArrayBuffer | null): Response {
  const headers = new Headers();
  for (const [name, value] of Object.entries(result.headers)) {
    if (value === undefined) continue;
    for (const one of Array.isArray(value) ? value : [value]) headers.append(name, one);
  }
  const status = result.statusCode;
  const empty = bytes === null || status === 204 || status === 205 || status === 304;
  return new Response(empty ? null : decoded(bytes, headers.get('content-encoding')), {
    status,
    statusText: STATUS_CODES[status] ?? '',
    headers,
  });
}

/** The body without its content codings (fetch undoes gzip, deflate and br; so does this). */
function decoded(bytes: ArrayBuffer, encoding: string | null): Uint8Array {
  let data = new Uint8Array(bytes);
  const codings = (encoding ?? '').split(',').map((coding) => coding.trim().toLowerCase());
  for (const coding of codings.reverse()) {
    if (coding === 'gzip' || coding === 'x-gzip') data = gunzipSync(data);
    else if (coding === 'deflate') data = inflateSync(data);
    else if (coding === 'br') data = brotliDecompressSync(data);
  }
  return data;
}
