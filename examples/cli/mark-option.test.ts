import { describe, expect, it } from 'vitest';
import { markedImagePath } from './ask.js';
import { UsageError, parseMarkOption } from './mark-option.js';

describe('parseMarkOption', () => {
  it('reads a bare box (numbered by position later) and a labelled one', () => {
    expect(parseMarkOption('10,20,200,220')).toEqual({ box: [10, 20, 200, 220] });
    expect(parseMarkOption('3:10, 20, 200.5, 220')).toEqual({
      box: [10, 20, 200.5, 220],
      label: 3,
    });
  });

  it.each(['10,20,200', '10,20,200,220,5', 'a,b,c,d', '-1,0,5,5', 'x:1,2,3,4', ':1,2,3,4', ''])(
    'refuses %j',
    (value) => {
      expect(() => parseMarkOption(value)).toThrow(UsageError);
    },
  );
});

describe('markedImagePath', () => {
  it('puts <name>.marked.<format> beside the input', () => {
    expect(markedImagePath('/shots/screen.jpg', 'png')).toBe('/shots/screen.marked.png');
    expect(markedImagePath('shapes.png', 'png')).toBe('shapes.marked.png');
  });
});
