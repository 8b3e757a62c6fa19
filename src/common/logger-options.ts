import { RequestMethod } from '@nestjs/common';
import type { Params } from 'nestjs-pino';
import type { AppConfig } from '../config/app-config';

/** How a query string is logged: it may carry a credential (`?access_token=…`), so none is logged. */
export const REDACTED_QUERY = '?[redacted]';

/** A URL without its query string's content: `/path?a=1&b=2` → `/path?[redacted]`. */
export function redactQuery(url: string): string {
  const question = url.indexOf('?');
  return question < 0 ? url : url.slice(0, question) + REDACTED_QUERY;
}

/**
 * pino: JSON lines on stdout (pretty-printed in development). Credentials and signatures are
 * redacted from request logs, and so are query strings; probes and scrapes are not logged per
 * request. The webhook route has
 * no request logger at all (measured: a per-request child logger is a few percent of its CPU);
 * every event it stores or handles logs its own line with the event's id and type.
 */
export function loggerOptions(config: AppConfig): Params {
  return {
    exclude: [{ method: RequestMethod.POST, path: 'webhooks/stripe' }],
    pinoHttp: {
      level: config.logLevel,
      transport:
        config.nodeEnv === 'development' && config.logLevel !== 'silent'
          ? { target: 'pino-pretty', options: { singleLine: true, translateTime: 'SYS:HH:MM:ss.l' } }
          : undefined,
      redact: {
        paths: ['req.headers.authorization', 'req.headers["stripe-signature"]', 'req.headers.cookie'],
        censor: '[redacted]',
      },
      serializers: {
        // Runs on pino's own serialised request (url, query, headers …).
        req: (req: { url?: unknown; query?: unknown }) => {
          if (typeof req.url === 'string') {
            req.url = redactQuery(req.url);
          }
          delete req.query;
          return req;
        },
      },
      quietReqLogger: true,
      autoLogging: {
        ignore: (request) => {
          const url = request.url ?? '';
          return url.startsWith('/health/') || url === '/metrics';
        },
      },
    },
  };
}
