import type { NextFunction, Request, Response } from 'express';
import type { MetricsService, ReceivedOutcome } from './metrics.service';

const OUTCOME_BY_ERROR: Record<string, ReceivedOutcome> = {
  invalid_signature: 'invalid_signature',
  invalid_payload: 'invalid_payload',
  payload_too_large: 'payload_too_large',
  unavailable: 'unavailable',
};

/**
 * Counts and times every webhook delivery, mounted before the body reader so that its refusals count
 * too; the controller and the exception filter note the event type, duplicates and error code in
 * res.locals. A delivery whose connection closes before its answer is counted as an `error`.
 */
export function webhookMetrics(metrics: MetricsService) {
  return (_request: Request, response: Response, next: NextFunction): void => {
    const started = process.hrtime.bigint();
    const count = (outcome: ReceivedOutcome): void => {
      const { eventType } = response.locals as { eventType?: string };
      metrics.webhookReceived(eventType, outcome, Number(process.hrtime.bigint() - started) / 1e9);
    };
    response.once('finish', () => count(outcomeOf(response)));
    response.once('close', () => {
      if (!response.writableFinished) {
        count('error');
      }
    });
    next();
  };
}

function outcomeOf(response: Response): ReceivedOutcome {
  const locals = response.locals as { duplicate?: boolean; errorCode?: string };
  if (response.statusCode === 200) {
    return locals.duplicate ? 'duplicate' : 'accepted';
  }
  return (
    OUTCOME_BY_ERROR[locals.errorCode ?? ''] ??
    (response.statusCode === 413 ? 'payload_too_large' : response.statusCode === 503 ? 'unavailable' : 'error')
  );
}
