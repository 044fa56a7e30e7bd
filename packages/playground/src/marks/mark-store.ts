import { nextLabel, renumber } from './marks.js';
import type { Box, PlacedMark, Size } from './marks.js';

type Listener = () => void;

/**
 * The marks of the current image and which one is selected. Views render from it and call
 * its methods; every change notifies them all.
 */
export class MarkStore {
  #marks: PlacedMark[] = [];
  #selected: number | undefined;
  #size: Size | undefined;
  readonly #listeners = new Set<Listener>();

  get marks(): readonly PlacedMark[] {
    return this.#marks;
  }

  /** The label of the selected mark. */
  get selected(): number | undefined {
    return this.#selected;
  }

  /** The image's size in pixels; undefined before an image is loaded. */
  get size(): Size | undefined {
    return this.#size;
  }

  get selectedMark(): PlacedMark | undefined {
    return this.#marks.find((mark) => mark.label === this.#selected);
  }

  subscribe(listener: Listener): void {
    this.#listeners.add(listener);
  }

  /** A new image: its size, and no marks. */
  reset(size: Size | undefined): void {
    this.#size = size;
    this.#marks = [];
    this.#selected = undefined;
    this.#changed();
  }

  add(box: Box): PlacedMark {
    const mark = { label: nextLabel(this.#marks), ...box };
    this.#marks = [...this.#marks, mark];
    this.#selected = mark.label;
    this.#changed();
    return mark;
  }

  update(label: number, change: (mark: PlacedMark) => PlacedMark): void {
    this.#marks = this.#marks.map((mark) => (mark.label === label ? change(mark) : mark));
    this.#changed();
  }

  remove(label: number): void {
    const index = this.#marks.findIndex((mark) => mark.label === label);
    if (index === -1) return;
    this.#marks = this.#marks.filter((mark) => mark.label !== label);
    // Selection moves to a neighbour, so Delete can be pressed again.
    const neighbour = this.#marks[Math.min(index, this.#marks.length - 1)];
    this.#selected = neighbour?.label;
    this.#changed();
  }

  clear(): void {
    this.#marks = [];
    this.#selected = undefined;
    this.#changed();
  }

  renumber(): void {
    const position = this.#marks.findIndex((mark) => mark.label === this.#selected);
    this.#marks = renumber(this.#marks);
    this.#selected = position === -1 ? undefined : position + 1;
    this.#changed();
  }

  select(label: number | undefined): void {
    if (this.#selected === label) return;
    this.#selected = label;
    this.#changed();
  }

  /** Selects the next (or, with -1, previous) mark in list order, wrapping around. */
  selectStep(step: 1 | -1): void {
    if (this.#marks.length === 0) return;
    const position = this.#marks.findIndex((mark) => mark.label === this.#selected);
    const next =
      position === -1
        ? step === 1
          ? 0
          : this.#marks.length - 1
        : (position + step + this.#marks.length) % this.#marks.length;
    this.select(this.#marks[next]!.label);
  }

  #changed(): void {
    for (const listener of this.#listeners) listener();
  }
}
