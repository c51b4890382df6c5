/**
 * Server-Sent Events over a streaming `fetch` body (the browser's
 * `EventSource` cannot send an `Authorization` header). Only the `data` of
 * each event matters to or3-sync; comments (the server's pings) and other
 * fields count as activity and are otherwise ignored.
 */

/** Splits `text/event-stream` text into the data of complete events. */
export class EventStreamParser {
  private buffer = '';
  private data: string[] = [];

  /** Feeds a chunk; returns the data of every event it completed. */
  push(chunk: string): string[] {
    this.buffer += chunk;
    const events: string[] = [];
    for (;;) {
      const end = this.buffer.search(/\r\n|\r|\n/);
      if (end < 0) break;
      // A lone `\r` at the end of the buffer may be half of a `\r\n`: wait for more.
      if (this.buffer[end] === '\r' && end === this.buffer.length - 1) break;
      const line = this.buffer.slice(0, end);
      this.buffer = this.buffer.slice(end + (this.buffer.startsWith('\r\n', end) ? 2 : 1));
      if (line === '') {
        if (this.data.length > 0) events.push(this.data.join('\n'));
        this.data = [];
      } else if (line.startsWith('data:')) {
        this.data.push(line.slice(line.startsWith('data: ') ? 6 : 5));
      }
    }
    return events;
  }
}

/**
 * Yields the data of each event of a streaming body; `onActivity` runs on
 * every chunk (pings included), for an idle watchdog.
 */
export async function* readEventStream(
  body: ReadableStream<Uint8Array>,
  onActivity: () => void,
): AsyncGenerator<string> {
  const reader = body.getReader();
  const decoder = new TextDecoder();
  const parser = new EventStreamParser();
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) return;
      onActivity();
      yield* parser.push(decoder.decode(value, { stream: true }));
    }
  } finally {
    // Closes the response when the reader stops early; harmless after the end or an abort.
    await reader.cancel().catch(() => {});
  }
}
