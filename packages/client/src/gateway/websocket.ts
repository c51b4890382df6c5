/** The part of the WebSocket API the gateway's subscription uses, and its subprotocol. */

/** The subprotocol of protocol version 1. */
export const SUBSCRIBE_SUBPROTOCOL = 'or3-sync.v1';
/**
 * The subprotocol a gateway chooses, when offered, to say it takes pushes on the socket
 * (`push` frames); a gateway that chooses `or3-sync.v1` does not.
 */
export const SUBSCRIBE_PUSH_SUBPROTOCOL = 'or3-sync.v1+push';

/**
 * The part of the WebSocket API a subscription uses: the browser's
 * `WebSocket`, or the `ws` package's in Node. Handlers take `any` events so
 * both implementations' event types fit.
 */
export interface WebSocketLike {
  readonly readyState: number;
  /** The subprotocol the server chose, once open. */
  readonly protocol?: string;
  send(data: string): void;
  close(code?: number, reason?: string): void;
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  onopen: ((event: any) => void) | null;
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  onmessage: ((event: any) => void) | null;
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  onclose: ((event: any) => void) | null;
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  onerror: ((event: any) => void) | null;
}

/** A WebSocket constructor (`new WebSocket(url, protocols)`). */
export type WebSocketConstructor = new (url: string, protocols?: string | string[]) => WebSocketLike;
