import type { AskResponse } from '@magma-som/sdk';
import { element } from '../dom.js';

const ms = (value: number): string => `${Math.round(value).toLocaleString('en')} ms`;

/** Timings (server stages, and the page's own first-token and total times) and token usage. */
export function renderStats(
  list: HTMLElement,
  response: AskResponse,
  page: { readonly firstTokenMs: number | undefined; readonly totalMs: number },
): void {
  const { timings: t, usage: u } = response;
  const rows: [string, string][] = [
    ['Queue', ms(t.queueMs)],
    ['Image', ms(t.imageMs)],
    ['Preprocess', ms(t.preprocessMs)],
    ['Vision', ms(t.visionMs)],
    ['Prefill', ms(t.prefillMs)],
    ['Decode', ms(t.decodeMs)],
    ['Server total', ms(t.totalMs)],
    ['First token (page)', page.firstTokenMs === undefined ? '–' : ms(page.firstTokenMs)],
    ['Total (page)', ms(page.totalMs)],
    [
      'Tokens',
      `${u.promptTokens} prompt (${u.imageTokens} image, ${u.cachedTokens} cached) + ${u.completionTokens} answer`,
    ],
    ['Finish', response.finishReason],
    ['Model', `${response.model.id} ${response.model.revision}`],
    ['Request', response.requestId],
  ];
  list.replaceChildren(
    ...rows.flatMap(([term, value]) => [element('dt', {}, term), element('dd', {}, value)]),
  );
  list.hidden = false;
}
