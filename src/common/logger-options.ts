import { RequestMethod } from '@nestjs/common';
import type { Params } from 'nestjs-pino';
import type { AppConfig } from '../config/app-config';

/**
 * JSON lines on stdout (pretty in development), credentials redacted, probes not logged. The
 * webhook route has no request logger (its cost shows there): each event logs its own line instead.
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
