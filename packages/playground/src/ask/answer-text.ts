import type { MarkReference } from '@magma-som/sdk';
import { element } from '../dom.js';

/** The answer as text nodes, with each mark it names (`references`) in a <mark> element. */
export function answerNodes(answer: string, references: readonly MarkReference[]): Node[] {
  const nodes: Node[] = [];
  let at = 0;
  for (const reference of [...references].sort((a, b) => a.offset - b.offset)) {
    if (reference.offset < at) continue;
    nodes.push(document.createTextNode(answer.slice(at, reference.offset)));
    const named = element('mark', { 'data-label': String(reference.label) }, reference.text);
    if (reference.mark === undefined) named.title = `no mark #${reference.label} was drawn`;
    nodes.push(named);
    at = reference.offset + reference.text.length;
  }
  nodes.push(document.createTextNode(answer.slice(at)));
  return nodes;
}
