import { element } from '../dom.js';
import { markProblems } from './marks.js';
import type { Box, PlacedMark } from './marks.js';
import type { MarkStore } from './mark-store.js';

const FIELDS = ['x1', 'y1', 'x2', 'y2'] as const;

interface Row {
  readonly item: HTMLLIElement;
  readonly select: HTMLButtonElement;
  readonly inputs: Record<(typeof FIELDS)[number], HTMLInputElement>;
  readonly problems: HTMLElement;
  /** The label this row shows now (renumbering changes it). */
  label: number;
}

/**
 * The marks as a list: each one's label, editable corners (image pixels) and a delete button.
 * Rows are kept and updated in place, so a field being typed in keeps its focus.
 */
export class MarkList {
  readonly #store: MarkStore;
  readonly #list: HTMLOListElement;
  readonly #empty: HTMLElement;
  readonly #rows: Row[] = [];
  #referenced: ReadonlySet<number> = new Set();

  constructor(store: MarkStore, list: HTMLOListElement, empty: HTMLElement) {
    this.#store = store;
    this.#list = list;
    this.#empty = empty;
    store.subscribe(() => this.render());
  }

  highlight(labels: ReadonlySet<number>): void {
    this.#referenced = labels;
    this.render();
  }

  render(): void {
    const marks = this.#store.marks;
    while (this.#rows.length > marks.length) this.#rows.pop()!.item.remove();
    while (this.#rows.length < marks.length) {
      const row = this.#row();
      this.#rows.push(row);
      this.#list.append(row.item);
    }
    marks.forEach((mark, index) => this.#fill(this.#rows[index]!, mark));
    this.#empty.hidden = marks.length > 0;
  }

  #row(): Row {
    const item = element('li', { class: 'mark-row' });
    const select = element('button', { type: 'button', class: 'mark-select' });
    const inputs = {} as Row['inputs'];
    const fields = element('div', { class: 'mark-fields' });
    const row: Row = { item, select, inputs, problems: element('p'), label: 0 };
    for (const field of FIELDS) {
      const label = element('label', { class: 'mark-field' });
      const input = element('input', {
        type: 'number',
        inputmode: 'numeric',
        step: '1',
        min: '0',
        name: field,
      });
      input.addEventListener('change', () => this.#edit(row, field, input.valueAsNumber));
      inputs[field] = input;
      label.append(element('span', {}, field), input);
      fields.append(label);
    }
    const remove = element('button', { type: 'button', class: 'mark-delete' }, 'Delete');
    remove.addEventListener('click', () => this.#store.remove(row.label));
    select.addEventListener('click', () => this.#store.select(row.label));
    row.problems.className = 'hint';
    item.append(select, fields, remove, row.problems);
    return row;
  }

  #fill(row: Row, mark: PlacedMark): void {
    row.label = mark.label;
    const selected = mark.label === this.#store.selected;
    row.item.dataset.label = String(mark.label);
    row.item.classList.toggle('selected', selected);
    row.item.classList.toggle('referenced', this.#referenced.has(mark.label));
    row.select.textContent = `#${mark.label}`;
    row.select.setAttribute('aria-pressed', String(selected));
    row.select.setAttribute('aria-label', `Select mark #${mark.label}`);
    const remove = row.item.querySelector('.mark-delete');
    remove?.setAttribute('aria-label', `Delete mark #${mark.label}`);
    const size = this.#store.size;
    const problems = size === undefined ? [] : markProblems(mark, size);
    row.problems.textContent = problems.join('; ');
    row.problems.id = `mark-${mark.label}-problems`;
    for (const field of FIELDS) {
      const input = row.inputs[field];
      input.setAttribute('aria-label', `Mark #${mark.label} ${field}`);
      input.setAttribute('aria-invalid', String(problems.length > 0));
      if (problems.length > 0) input.setAttribute('aria-describedby', row.problems.id);
      else input.removeAttribute('aria-describedby');
      if (document.activeElement !== input) input.value = String(mark[field]);
    }
  }

  /** A typed coordinate, kept as typed (even outside the image: the server explains why not). */
  #edit(row: Row, field: keyof Box, value: number): void {
    if (!Number.isFinite(value)) {
      this.render();
      return;
    }
    this.#store.update(row.label, (mark) => ({ ...mark, [field]: Math.round(value) }));
  }
}
