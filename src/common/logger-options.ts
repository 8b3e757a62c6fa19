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
 * JSON lines on stdout (pretty in development), credentials and query strings redacted, probes not
 * logged. The webhook route has no request logger (its cost shows there): each event logs its own
 * line instead.
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
