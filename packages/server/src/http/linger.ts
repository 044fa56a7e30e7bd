import type { Socket } from 'node:net';

/** Marks a socket whose request was answered before its body had been read. */
const ANSWERED_EARLY = Symbol('magma.answeredEarly');

type LingeringSocket = Socket & { [ANSWERED_EARLY]?: boolean };

/**
 * Lingering close for an answer sent before the request body was read (413, 401, 415...).
 * Node would end the socket and destroy it at once; unread bytes then make the kernel send a
 * reset, and a client still uploading never reads the answer. Here the socket only half-closes:
 * the rest of the body is read and discarded (Node's parser dumps it) until the client closes
 * its side, or the body timeout or idle timeout ends it.
 */
export function lingerAfterEarlyAnswer(socket: Socket): void {
  const lingering = socket as LingeringSocket;
  if (lingering[ANSWERED_EARLY]) return;
  lingering[ANSWERED_EARLY] = true;
  lingering.destroySoon = function destroySoon(this: Socket) {
    if (this.writable) this.end();
  };
}

/** Whether the socket's request was already answered (no second answer may be written). */
export function wasAnsweredEarly(socket: object): boolean {
  return (socket as LingeringSocket)[ANSWERED_EARLY] === true;
}
