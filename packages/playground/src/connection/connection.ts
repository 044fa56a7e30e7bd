import { createClient } from '@magma-som/sdk';
import type { MagmaClient } from '@magma-som/sdk';

const KEY_STORAGE = 'magma-som.apiKey';

/**
 * The server the page talks to: the one that served it (the folder the page is in, so a proxy
 * may mount the server under a path), or `?server=https://...` for a server elsewhere (its
 * MAGMA_CORS_ORIGINS must then list this page's origin).
 */
export function serverBaseUrl(location: Location): string {
  const explicit = new URLSearchParams(location.search).get('server');
  const base = explicit ?? new URL('.', location.href).href;
  return base.replace(/\/+$/, '');
}

/**
 * One SDK client for the page, remade when the API key changes. The key lives in memory, or
 * in sessionStorage (this tab only) when the user asks for it; never in localStorage.
 */
export class Connection {
  readonly baseUrl: string;
  #apiKey: string | undefined;
  #client: MagmaClient;

  constructor(baseUrl: string) {
    this.baseUrl = baseUrl;
    this.#apiKey = sessionStorage.getItem(KEY_STORAGE) ?? undefined;
    this.#client = this.#create();
  }

  get client(): MagmaClient {
    return this.#client;
  }

  get hasKey(): boolean {
    return this.#apiKey !== undefined;
  }

  setApiKey(key: string, remember: boolean): void {
    this.#apiKey = key;
    if (remember) sessionStorage.setItem(KEY_STORAGE, key);
    else sessionStorage.removeItem(KEY_STORAGE);
    void this.#client.close();
    this.#client = this.#create();
  }

  /** Forgets a key the server refused. */
  forgetApiKey(): void {
    this.#apiKey = undefined;
    sessionStorage.removeItem(KEY_STORAGE);
    void this.#client.close();
    this.#client = this.#create();
  }

  #create(): MagmaClient {
    return createClient({
      baseUrl: this.baseUrl,
      ...(this.#apiKey === undefined ? {} : { apiKey: this.#apiKey }),
    });
  }
}
