import type { NextFunction, Request, Response } from 'express';
import type { MetricsService, ReceivedOutcome } from './metrics.service';

const OUTCOME_BY_ERROR: Record<string, ReceivedOutcome> = {
  invalid_signature: 'invalid_signature',
  invalid_payload: 'invalid_payload',
  payload_too_large: 'payload_too_large',
  unavailable: 'unavailable',
};

/**
 * Counts and times every webhook delivery, mounted before the body parser so that 413s count too;
 * the controller and the exception filter note the event type, duplicates and error code in res.locals.
 */
export function webhookMetrics(metrics: MetricsService) {
  return (request: Request, response: Response, next: NextFunction): void => {
    if (request.method !== 'POST') {
      next();
      return;
    }
    const started = process.hrtime.bigint();
    response.on('finish', () => {
      const locals = response.locals as { eventType?: string; duplicate?: boolean; errorCode?: string };
      const outcome: ReceivedOutcome =
        response.statusCode === 200
          ? locals.duplicate
            ? 'duplicate'
            : 'accepted'
          : (OUTCOME_BY_ERROR[locals.errorCode ?? ''] ??
            (response.statusCode === 413
              ? 'payload_too_large'
              : response.statusCode === 503
                ? 'unavailable'
                : 'error'));
      metrics.webhookReceived(locals.eventType, outcome, Number(process.hrtime.bigint() - started) / 1e9);
    });
    next();
  };
}
