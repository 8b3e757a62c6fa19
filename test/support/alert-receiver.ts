import { createServer, Server } from 'node:http';

/** A local HTTP endpoint standing in for a Slack incoming webhook: records every JSON body posted. */
export class AlertReceiver {
  readonly messages: Array<{ text: string }> = [];
  private constructor(private readonly server: Server) {}

  static async start(status = 200): Promise<AlertReceiver> {
    const server = createServer();
    const receiver = new AlertReceiver(server);
    server.on('request', (req, res) => {
      let body = '';
      req.on('data', (chunk: Buffer) => (body += chunk.toString()));
      req.on('end', () => {
        receiver.messages.push(JSON.parse(body) as { text: string });
        res.writeHead(status, { 'Content-Type': 'text/plain' }).end('ok');
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    return receiver;
  }

  get url(): string {
    const address = this.server.address();
    return `http://127.0.0.1:${typeof address === 'object' && address ? address.port : 0}/hooks/slack`;
  }

  close(): Promise<void> {
    return new Promise((resolve) => this.server.close(() => resolve()));
  }
}
