import { Logger } from '@nestjs/common';
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import { HttpLimits, maxConnectionsFor, readFileDescriptorLimit } from './http-limits';

/** Above this share of the connection limit a warning is logged; below the lower one it is re-armed. */
const NEAR_LIMIT_SHARE = 0.8;
const BACK_TO_NORMAL_SHARE = 0.6;
/** Refused connections are logged at most this often (a flood would otherwise flood the log too). */
const REFUSED_LOG_INTERVAL_MS = 10_000;

/**
 * Puts the HTTP server's timeouts in place and closes what a client leaves open: silent sockets,
 * stalled requests and idle keep-alive connections. Node never closes a socket that sends nothing
 * at all, so thousands of them used to exhaust the file descriptors, and then even /health/live and
 * the database pool failed. Connections are capped below the descriptor limit, and the log says when
 * they near the cap and when connections are refused at it.
 */
export class HttpServerGuard {
  private readonly logger = new Logger(HttpServerGuard.name);
  private readonly exchanges = new WeakMap<Socket, { request: IncomingMessage; response: ServerResponse }>();
  private readonly maxConnections: number | undefined;
  private connections = 0;
  private nearLimit = false;
  private refused = 0;
  private refusedLoggedAt = 0;

  constructor(
    server: Server,
    limits: HttpLimits,
    private readonly fileDescriptorLimit: number | undefined = readFileDescriptorLimit(),
  ) {
    server.headersTimeout = limits.headersTimeoutMs;
    server.requestTimeout = limits.requestTimeoutMs;
    server.keepAliveTimeout = limits.keepAliveTimeoutMs;
    // Read by Node when the server starts listening (it is otherwise only a createServer option).
    (server as Server & { connectionsCheckingInterval: number }).connectionsCheckingInterval =
      limits.timeoutCheckIntervalMs;
    // Every socket gets this inactivity timeout from the start (and again after a keep-alive wait);
    // with a 'timeout' listener Node leaves the decision to onIdle.
    server.timeout = limits.idleSocketTimeoutMs;
    server.on('timeout', (socket: Socket) => this.onIdle(socket));
    server.on('request', (request: IncomingMessage, response: ServerResponse) => {
      const socket = request.socket;
      this.exchanges.set(socket, { request, response });
      response.once('close', () => this.exchanges.delete(socket));
    });
    if (fileDescriptorLimit !== undefined) {
      this.maxConnections = maxConnectionsFor(fileDescriptorLimit);
      server.maxConnections = this.maxConnections;
      server.on('connection', (socket: Socket) => this.onConnection(socket));
      server.on('drop', () => this.onRefused());
    }
  }

  /**
   * An inactive socket is closed unless the server is still working on a request it has received
   * whole (a long admin call, say): a client that owes bytes of its request, never sent one, sits
   * idle between requests, or does not read the answer is cut off.
   */
  private onIdle(socket: Socket): void {
    const exchange = this.exchanges.get(socket);
    if (exchange && exchange.request.complete && !exchange.response.writableEnded && socket.writableLength === 0) {
      return;
    }
    socket.destroy();
  }

  private onConnection(socket: Socket): void {
    this.connections++;
    socket.once('close', () => {
      this.connections--;
      if (this.nearLimit && this.connections < this.share(BACK_TO_NORMAL_SHARE)) {
        this.nearLimit = false;
        this.logger.log(
          { connections: this.connections, maxConnections: this.maxConnections, refused: this.refused },
          'open connections back to normal',
        );
        this.refused = 0;
      }
    });
    if (!this.nearLimit && this.connections >= this.share(NEAR_LIMIT_SHARE)) {
      this.nearLimit = true;
      this.logger.warn(
        {
          connections: this.connections,
          maxConnections: this.maxConnections,
          fileDescriptorLimit: this.fileDescriptorLimit,
        },
        'open connections near the limit: past it new connections are refused',
      );
    }
  }

  private onRefused(): void {
    this.refused++;
    const now = Date.now();
    if (now - this.refusedLoggedAt >= REFUSED_LOG_INTERVAL_MS) {
      this.refusedLoggedAt = now;
      this.logger.warn(
        { maxConnections: this.maxConnections, refused: this.refused },
        'connections refused: the connection limit is reached',
      );
    }
  }

  private share(fraction: number): number {
    return Math.floor((this.maxConnections ?? 0) * fraction);
  }
}
