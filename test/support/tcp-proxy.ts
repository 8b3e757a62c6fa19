import { createServer, Server, Socket, connect } from 'node:net';
import { Transform, TransformCallback } from 'node:stream';

type Mode = 'open' | 'cut' | 'black-hole';

/**
 * A TCP relay in front of the real PostgreSQL server, so that a test can make the database
 * unreachable and then bring it back, without stopping the server other test files share. Two
 * kinds of outage: `cut()` (every connection reset, new ones refused: failures are instant) and
 * `blackHole()` (nothing answers and nothing fails: the case timeouts exist for).
 */
export class TcpProxy {
  private readonly sockets = new Set<Socket>();
  private mode: Mode = 'open';
  private commitRepliesToDrop = 0;

  private constructor(
    private readonly server: Server,
    private readonly target: { host: string; port: number },
  ) {}

  static async start(targetUrl: string): Promise<TcpProxy> {
    const parsed = new URL(targetUrl);
    const target = { host: parsed.hostname, port: Number(parsed.port || 5432) };
    const server = createServer();
    const proxy = new TcpProxy(server, target);
    server.on('connection', (client) => proxy.accept(client));
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    return proxy;
  }

  get port(): number {
    const address = this.server.address();
    return typeof address === 'object' && address ? address.port : 0;
  }

  /** The same connection string, routed through this proxy. */
  urlFor(databaseUrl: string): string {
    const parsed = new URL(databaseUrl);
    parsed.hostname = '127.0.0.1';
    parsed.port = String(this.port);
    return parsed.toString();
  }

  /** The database becomes unreachable: open connections are reset, new ones are closed at once. */
  cut(): void {
    this.mode = 'cut';
    for (const socket of this.sockets) {
      socket.destroy();
    }
    this.sockets.clear();
  }

  /**
   * The database goes silent, as behind a network partition or a frozen host: new connections are
   * accepted and never answered, and open ones stop carrying data either way, with no reset or
   * close. Connections stalled here stay silent after `restore()` (like TCP connections to a host
   * that went away without a reset); they end only when the service closes them (or at `close()`).
   */
  blackHole(): void {
    this.mode = 'black-hole';
    for (const socket of this.sockets) {
      socket.unpipe();
      socket.pause();
    }
  }

  /**
   * The server's next answer to COMMIT is lost on its way back (the transaction did commit): that
   * connection carries nothing more from the server, as if the network had failed right then.
   */
  dropNextCommitReply(): void {
    this.commitRepliesToDrop++;
  }

  /** Whether a COMMIT reply was dropped since `dropNextCommitReply()` (none left to drop). */
  get commitReplyDropped(): boolean {
    return this.commitRepliesToDrop === 0;
  }

  /** New connections reach the database again. */
  restore(): void {
    this.mode = 'open';
  }

  async close(): Promise<void> {
    this.cut();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  private accept(client: Socket): void {
    switch (this.mode) {
      case 'cut':
        client.destroy();
        return;
      case 'black-hole':
        this.track(client, [client]);
        client.pause(); // read nothing, answer nothing
        return;
      case 'open': {
        const upstream = connect(this.target.port, this.target.host);
        this.track(client, [client, upstream]);
        this.track(upstream, [client, upstream]);
        client.pipe(upstream);
        upstream.pipe(this.commitReplyFilter()).pipe(client);
      }
    }
  }

  /** Passes the server's bytes on, unless a COMMIT reply is to be dropped: then from that reply on, nothing. */
  private commitReplyFilter(): Transform {
    let tail = Buffer.alloc(0);
    let swallowing = false;
    return new Transform({
      transform: (chunk: Buffer, _encoding: BufferEncoding, done: TransformCallback) => {
        if (swallowing) {
          done();
          return;
        }
        if (this.commitRepliesToDrop > 0) {
          const seen = Buffer.concat([tail, chunk]);
          const at = seen.indexOf(COMMIT_COMPLETE);
          if (at >= 0) {
            this.commitRepliesToDrop--;
            swallowing = true;
            done(null, seen.subarray(tail.length, Math.max(tail.length, at)));
            return;
          }
          tail = seen.subarray(Math.max(0, seen.length - COMMIT_COMPLETE.length));
        }
        done(null, chunk);
      },
    });
  }

  /** Remembers `socket` until it closes; its closing closes the whole relay. */
  private track(socket: Socket, relay: Socket[]): void {
    this.sockets.add(socket);
    socket.on('error', () => undefined);
    socket.on('close', () => {
      this.sockets.delete(socket);
      for (const other of relay) {
        other.destroy();
      }
    });
  }
}

/** PostgreSQL's CommandComplete message for a COMMIT: 'C', length 11, "COMMIT\0". */
const COMMIT_COMPLETE = Buffer.from([0x43, 0, 0, 0, 11, ...Buffer.from('COMMIT\0', 'latin1')]);
