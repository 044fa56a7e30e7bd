import { element, isTyping } from '../dom.js';
import { boxFromCorners, growBox, isBigEnough, moveBox, resizeBox } from './marks.js';
import type { Box, Corner, PlacedMark, Point } from './marks.js';
import type { MarkStore } from './mark-store.js';

type Gesture =
  | { readonly kind: 'draw'; readonly from: Point }
  | { readonly kind: 'move'; readonly from: Point; readonly mark: PlacedMark }
  | { readonly kind: 'resize'; readonly corner: Corner; readonly mark: PlacedMark };

const CORNERS: readonly Corner[] = ['nw', 'ne', 'sw', 'se'];

/**
 * The boxes over the image: drawn by dragging on it, moved by dragging a box, resized by its
 * corners; keyboard edits of the selected box anywhere but in a text field. Boxes are positioned in percent of
 * the image, so they follow it when the layout resizes it.
 */
export class MarkEditor {
  readonly #store: MarkStore;
  readonly #overlay: HTMLElement;
  readonly #draft: HTMLElement;
  #gesture: Gesture | undefined;
  #referenced: ReadonlySet<number> = new Set();

  constructor(store: MarkStore, overlay: HTMLElement) {
    this.#store = store;
    this.#overlay = overlay;
    this.#draft = element('div', { class: 'box draft', 'aria-hidden': 'true' });
    overlay.addEventListener('pointerdown', (event) => this.#start(event));
    overlay.addEventListener('pointermove', (event) => this.#drag(event));
    overlay.addEventListener('pointerup', (event) => this.#end(event));
    overlay.addEventListener('pointercancel', () => this.#cancel());
    document.addEventListener('keydown', (event) => {
      if (!isTyping(event.target) && !event.ctrlKey && !event.metaKey) this.#key(event);
    });
    store.subscribe(() => this.render());
  }

  /** Marks the answer named, outlined until the next question. */
  highlight(labels: ReadonlySet<number>): void {
    this.#referenced = labels;
    this.render();
  }

  render(): void {
    const size = this.#store.size;
    const boxes: HTMLElement[] = [];
    if (size !== undefined) {
      for (const mark of this.#store.marks) boxes.push(this.#boxElement(mark));
    }
    this.#overlay.replaceChildren(...boxes);
    if (this.#gesture?.kind === 'draw') this.#overlay.append(this.#draft);
  }

  #boxElement(mark: PlacedMark): HTMLElement {
    const selected = mark.label === this.#store.selected;
    const box = element('div', {
      class: [
        'box',
        selected ? 'selected' : '',
        this.#referenced.has(mark.label) ? 'referenced' : '',
      ].join(' '),
      'data-label': String(mark.label),
      'aria-hidden': 'true',
    });
    this.#place(box, mark);
    box.append(element('span', { class: 'tag' }, String(mark.label)));
    if (selected) {
      for (const corner of CORNERS) {
        box.append(element('span', { class: `handle ${corner}`, 'data-corner': corner }));
      }
    }
    return box;
  }

  /** Positions an element over `box`, in percent of the image (CSSOM: allowed by the CSP). */
  #place(node: HTMLElement, box: Box): void {
    const size = this.#store.size!;
    node.style.left = `${(box.x1 / size.width) * 100}%`;
    node.style.top = `${(box.y1 / size.height) * 100}%`;
    node.style.width = `${((box.x2 - box.x1) / size.width) * 100}%`;
    node.style.height = `${((box.y2 - box.y1) / size.height) * 100}%`;
  }

  /** The pointer's position in image pixels. */
  #point(event: PointerEvent): Point {
    const size = this.#store.size!;
    const rect = this.#overlay.getBoundingClientRect();
    return {
      x: ((event.clientX - rect.left) / rect.width) * size.width,
      y: ((event.clientY - rect.top) / rect.height) * size.height,
    };
  }

  #start(event: PointerEvent): void {
    if (event.button !== 0 || this.#store.size === undefined) return;
    event.preventDefault();
    this.#overlay.parentElement?.focus({ preventScroll: true });
    const target = event.target as HTMLElement;
    const boxNode = target.closest<HTMLElement>('.box:not(.draft)');
    const from = this.#point(event);
    const mark = this.#store.marks.find((m) => String(m.label) === boxNode?.dataset.label);
    const corner = target.dataset.corner as Corner | undefined;
    if (mark !== undefined && corner !== undefined) {
      this.#gesture = { kind: 'resize', corner, mark };
    } else if (mark !== undefined) {
      this.#gesture = { kind: 'move', from, mark };
      this.#store.select(mark.label);
    } else {
      this.#gesture = { kind: 'draw', from };
      this.#place(this.#draft, boxFromCorners(from, from, this.#store.size));
      this.#overlay.append(this.#draft);
    }
    this.#overlay.setPointerCapture(event.pointerId);
  }

  #drag(event: PointerEvent): void {
    const gesture = this.#gesture;
    const size = this.#store.size;
    if (gesture === undefined || size === undefined) return;
    const point = this.#point(event);
    if (gesture.kind === 'draw') {
      this.#place(this.#draft, boxFromCorners(gesture.from, point, size));
    } else if (gesture.kind === 'move') {
      const moved = moveBox(gesture.mark, point.x - gesture.from.x, point.y - gesture.from.y, size);
      this.#store.update(gesture.mark.label, () => moved);
    } else {
      const resized = resizeBox(gesture.mark, gesture.corner, point, size);
      this.#store.update(gesture.mark.label, () => resized);
    }
  }

  #end(event: PointerEvent): void {
    const gesture = this.#gesture;
    const size = this.#store.size;
    this.#gesture = undefined;
    this.#draft.remove();
    if (gesture?.kind !== 'draw' || size === undefined) return;
    const box = boxFromCorners(gesture.from, this.#point(event), size);
    // A click on the image (no drag) deselects instead of making a dot.
    if (isBigEnough(box)) this.#store.add(box);
    else this.#store.select(undefined);
  }

  #cancel(): void {
    this.#gesture = undefined;
    this.#draft.remove();
  }

  /** Arrow keys move the selected box (Shift: 10 px), Alt+arrows resize it; Delete removes it. */
  #key(event: KeyboardEvent): void {
    const size = this.#store.size;
    const mark = this.#store.selectedMark;
    if (event.key === 'Escape') {
      if (this.#gesture !== undefined) this.#cancel();
      else this.#store.select(undefined);
      return;
    }
    if (size === undefined || mark === undefined) return;
    const step = event.shiftKey ? 10 : 1;
    const arrows: Record<string, [number, number]> = {
      ArrowLeft: [-step, 0],
      ArrowRight: [step, 0],
      ArrowUp: [0, -step],
      ArrowDown: [0, step],
    };
    const delta = arrows[event.key];
    if (delta !== undefined) {
      event.preventDefault();
      const [dx, dy] = delta;
      this.#store.update(mark.label, (m) =>
        event.altKey ? growBox(m, dx, dy, size) : moveBox(m, dx, dy, size),
      );
    } else if (event.key === 'Delete' || event.key === 'Backspace') {
      event.preventDefault();
      this.#store.remove(mark.label);
    }
  }
}
