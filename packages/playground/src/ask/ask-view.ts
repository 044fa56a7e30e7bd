import type { AskResponse, MarkedImage } from '@magma-som/sdk';
import { byId, element } from '../dom.js';
import type { Connection } from '../connection/connection.js';
import type { MarkStore } from '../marks/mark-store.js';
import { answerNodes } from './answer-text.js';
import { reportError } from './error-text.js';
import { renderStats } from './stats-view.js';
import { suggestedQuestions } from './suggestions.js';

export interface AskViewDeps {
  readonly connection: Connection;
  readonly store: MarkStore;
  /** The image being asked about, if one is loaded. */
  readonly image: () => Blob | undefined;
  /** Marks the answer named (empty to clear). */
  readonly highlight: (labels: ReadonlySet<number>) => void;
  /** The image as the model saw it, from the last answer (undefined to clear). */
  readonly showMarkedImage: (image: MarkedImage | undefined) => void;
  /** The server refused the API key (or none was given). */
  readonly needsApiKey: () => void;
}

interface Question {
  readonly image: Blob;
  readonly marks: readonly { label: number; x1: number; y1: number; x2: number; y2: number }[];
  readonly prompt: string;
}

/**
 * The question and its answer: suggestions from the marks, the streamed answer with the marks
 * it names highlighted, timings and usage, and the typed error with a retry when retryable.
 */
export class AskView {
  readonly #deps: AskViewDeps;
  readonly #form = byId<HTMLFormElement>('ask-form');
  readonly #prompt = byId<HTMLTextAreaElement>('prompt');
  readonly #askButton = byId<HTMLButtonElement>('ask-button');
  readonly #stopButton = byId<HTMLButtonElement>('stop-button');
  readonly #suggestions = byId('suggestions');
  readonly #answer = byId('answer');
  readonly #stats = byId('stats');
  readonly #error = byId('ask-error');
  readonly #errorText = byId('ask-error-text');
  readonly #retryButton = byId<HTMLButtonElement>('retry-button');
  #running: AbortController | undefined;
  #last: Question | undefined;

  constructor(deps: AskViewDeps) {
    this.#deps = deps;
    this.#form.addEventListener('submit', (event) => {
      event.preventDefault();
      this.ask();
    });
    this.#prompt.addEventListener('keydown', (event) => {
      // Enter asks; Shift+Enter starts a new line.
      if (event.key === 'Enter' && !event.shiftKey && !event.isComposing) {
        event.preventDefault();
        this.ask();
      }
    });
    this.#stopButton.addEventListener('click', () => this.#running?.abort());
    this.#retryButton.addEventListener('click', () => {
      if (this.#last !== undefined) void this.#run(this.#last);
    });
    deps.store.subscribe(() => this.#renderSuggestions());
    this.#renderSuggestions();
  }

  /** Asks the question in the prompt field about the image and its marks. */
  ask(): void {
    const image = this.#deps.image();
    const prompt = this.#prompt.value.trim();
    if (image === undefined) return this.#showError('Load an image first.', '', false);
    if (prompt === '') {
      this.#prompt.focus();
      return this.#showError('Type a question, or pick a suggested one.', '', false);
    }
    const marks = this.#deps.store.marks.map(({ label, x1, y1, x2, y2 }) => ({
      label,
      x1,
      y1,
      x2,
      y2,
    }));
    void this.#run({ image, marks, prompt });
  }

  async #run(question: Question): Promise<void> {
    this.#running?.abort();
    const running = new AbortController();
    this.#running = running;
    this.#last = question;
    this.#error.hidden = true;
    this.#stats.hidden = true;
    this.#answer.replaceChildren();
    this.#answer.setAttribute('aria-busy', 'true');
    this.#deps.highlight(new Set());
    this.#deps.showMarkedImage(undefined);
    this.#setBusy(true);
    const started = performance.now();
    let firstTokenMs: number | undefined;
    let streamed = '';
    try {
      const events = this.#deps.connection.client.askStream(
        {
          image: question.image,
          marks: question.marks,
          prompt: question.prompt,
          returnMarkedImage: true,
        },
        { signal: running.signal },
      );
      for await (const event of events) {
        if (event.type === 'token') {
          firstTokenMs ??= performance.now() - started;
          streamed += event.text;
          this.#answer.textContent = streamed;
        } else {
          this.#finish(event.response, { firstTokenMs, totalMs: performance.now() - started });
        }
      }
    } catch (error) {
      if (running.signal.aborted) return;
      const report = reportError(error);
      this.#showError(report.text, report.detail, report.retryable);
      if (report.needsApiKey) this.#deps.needsApiKey();
    } finally {
      if (this.#running === running) {
        this.#running = undefined;
        this.#setBusy(false);
        this.#answer.setAttribute('aria-busy', 'false');
      }
    }
  }

  #finish(response: AskResponse, page: { firstTokenMs: number | undefined; totalMs: number }) {
    this.#answer.replaceChildren(...answerNodes(response.answer, response.references));
    this.#deps.highlight(new Set(response.references.map((r) => r.label)));
    this.#deps.showMarkedImage(response.markedImage);
    renderStats(this.#stats, response, page);
  }

  #showError(text: string, detail: string, retryable: boolean): void {
    this.#errorText.replaceChildren(
      document.createTextNode(text),
      ...(detail === '' ? [] : [element('br'), element('small', {}, detail)]),
    );
    this.#retryButton.hidden = !retryable;
    this.#error.hidden = false;
  }

  #setBusy(busy: boolean): void {
    this.#askButton.disabled = busy;
    this.#stopButton.hidden = !busy;
    for (const button of this.#suggestions.querySelectorAll('button')) button.disabled = busy;
  }

  #renderSuggestions(): void {
    const { marks, selected } = this.#deps.store;
    // The selected mark first, so "What color is object #N?" is about the one in focus.
    const labels = marks.map((mark) => mark.label);
    if (selected !== undefined)
      labels.sort((a, b) => Number(b === selected) - Number(a === selected));
    const buttons = suggestedQuestions(labels).map((question) => {
      const button = element('button', { type: 'button', class: 'suggestion' }, question);
      button.disabled = this.#running !== undefined;
      button.addEventListener('click', () => {
        this.#prompt.value = question;
        this.ask();
      });
      return button;
    });
    this.#suggestions.replaceChildren(...buttons);
  }
}
