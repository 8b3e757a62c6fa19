import { connect, Socket } from 'node:net';

export interface RawResponse {
  status: number;
  headers: Record<string, string>;
  /** The body parsed as JSON when it is JSON, else the text. */
  body: unknown;
}

/** A client that writes HTTP by hand, to send what a well-behaved client never would (and then stall). */
export interface RawConnection {
  socket: Socket;
  /** Opens once the connection is established. */
  connected: Promise<void>;
  /** The first final (non-1xx) response, or undefined when the connection closed without one. */
  response: Promise<RawResponse | undefined>;
  /** Opens once the server answered `100 Continue` (the request was handed to the application). */
  continued: Promise<void>;
  /** Opens once the connection is closed, by either side. */
  closed: Promise<void>;
  isClosed(): boolean;
  write(data: string | Buffer): void;
}

export function openRaw(url: string, initial?: string | Buffer): RawConnection {
  const { hostname, port } = new URL(url);
  const socket = connect(Number(port), hostname);
  let received = Buffer.alloc(0);
  let closed = false;
  let resolveResponse!: (response: RawResponse | undefined) => void;
  let resolveContinued!: () => void;
  const response = new Promise<RawResponse | undefined>((resolve) => (resolveResponse = resolve));
  const continued = new Promise<void>((resolve) => (resolveContinued = resolve));
  const connected = new Promise<void>((resolve) => socket.once('connect', () => resolve()));
  const closedPromise = new Promise<void>((resolve) =>
    socket.once('close', () => {
      closed = true;
      resolveResponse(undefined);
      resolve();
    }),
  );
  socket.on('error', () => undefined); // a reset after the server answered and closed is expected here
  socket.on('data', (chunk: Buffer) => {
    received = Buffer.concat([received, chunk]);
    for (;;) {
      const parsed = parseResponse(received);
      if (!parsed) {
        return;
      }
      received = received.subarray(parsed.length);
      if (parsed.response.status === 100) {
        resolveContinued();
      } else {
        resolveResponse(parsed.response);
        return;
      }
    }
  });
  if (initial !== undefined) {
    socket.write(initial);
  }
  return {
    socket,
    connected,
    response,
    continued,
    closed: closedPromise,
    isClosed: () => closed,
    write: (data) => {
      if (!socket.destroyed) {
        socket.write(data);
      }
    },
  };
}

/** A request head; the body, if any, is written separately. */
export function requestHead(method: string, path: string, headers: Record<string, string | number>): string {
  const lines = Object.entries(headers).map(([name, value]) => `${name}: ${value}`);
  return `${method} ${path} HTTP/1.1\r\nHost: localhost\r\n${lines.join('\r\n')}${lines.length ? '\r\n' : ''}\r\n`;
}

function parseResponse(data: Buffer): { response: RawResponse; length: number } | undefined {
  const end = data.indexOf('\r\n\r\n');
  if (end < 0) {
    return undefined;
  }
  const [statusLine, ...headerLines] = data.subarray(0, end).toString('latin1').split('\r\n');
  const headers: Record<string, string> = {};
  for (const line of headerLines) {
    const colon = line.indexOf(':');
    headers[line.slice(0, colon).trim().toLowerCase()] = line.slice(colon + 1).trim();
  }
  const status = Number(statusLine.split(' ')[1]);
  const bodyLength = Number(headers['content-length'] ?? 0);
  if (data.length < end + 4 + bodyLength) {
    return undefined;
  }
  const text = data.subarray(end + 4, end + 4 + bodyLength).toString('utf8');
  let body: unknown = text;
  try {
    body = JSON.parse(text);
  } catch {
    // not JSON: keep the text
  }
  return { response: { status, headers, body }, length: end + 4 + bodyLength };
}

/** Resolves with `promise`, or rejects after `ms` naming `what`. */
export async function within<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([
      promise,
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`${what}: nothing within ${ms} ms`)), ms);
      }),
    ]);
  } finally {
    clearTimeout(timer);
  }
}
