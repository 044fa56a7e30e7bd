// Typed arrays handed to another thread are transferred, which detaches their whole
// ArrayBuffer: only a view that spans a buffer of its own can go without taking other memory
// along (a small Buffer is a view of Node's shared pool). Copying instead costs the event loop
// page faults for megabytes, so a view that owns its buffer is passed as it is.

/** Whether `view` spans the whole of an ArrayBuffer (not a SharedArrayBuffer) of its own. */
export function ownsItsBuffer(view: ArrayBufferView): boolean {
  return (
    view.buffer instanceof ArrayBuffer &&
    view.byteOffset === 0 &&
    view.byteLength === view.buffer.byteLength
  );
}

/**
 * The bytes as a plain Uint8Array over a buffer of their own: over the same memory when `bytes`
 * owns its buffer, else a copy (not `bytes.slice()`: on a Buffer that is a view of the same memory).
 */
export function ownedBytes(bytes: Uint8Array): Uint8Array {
  return ownsItsBuffer(bytes)
    ? new Uint8Array(bytes.buffer, 0, bytes.byteLength)
    : new Uint8Array(bytes);
}
