import type { NextFunction, Request, Response } from 'express';
import { AppError, ErrorCode } from '../common/app-error';
import type { BodyBudget } from './body-budget';

export interface WebhookBodyOptions {
  /** The signature check's part that needs no body (header present, well-formed, timestamp in tolerance). */
  checkHeader(header: unknown): void;
  maxBytes: number;
  timeoutMs: number;
  budget: BodyBudget;
}

/** The smallest buffer a body without a Content-Length starts in; it doubles as it fills. */
const MIN_CHUNKED_CAPACITY = 16 * 1024;

/**
 * Reads the webhook body as raw bytes into `request.body` (the signature is over those bytes), and
 * refuses what can be refused without it, before reading a byte: a missing or malformed
 * Stripe-Signature header, or a stale one (the signature check's own answer, 400 invalid_signature),
 * then a Content-Length above the limit (413). The body is not inflated whatever its
 * Content-Encoding: the controller refuses an encoded body after the signature check.
 *
 * A body is copied into one buffer of its Content-Length as it arrives, so that its socket's chunks
 * are freed at once, and takes its share of the body budget first (503 when none is left). It must
 * arrive within `timeoutMs` (408). Every refusal closes the connection after its answer, so that
 * the rest of a refused body is never read and a stalled sender cannot keep the socket.
 */
export function webhookBody(options: WebhookBodyOptions) {
  return (request: Request, response: Response, next: NextFunction): void => {
    const refuse = (error: AppError): void => {
      response.setHeader('Connection', 'close');
      next(error);
    };
    try {
      options.checkHeader(request.headers['stripe-signature']);
    } catch (error) {
      if (error instanceof AppError) {
        refuse(error);
      } else {
        next(error);
      }
      return;
    }
    const declared = declaredLength(request);
    if (declared !== undefined && declared > options.maxBytes) {
      refuse(tooLarge(options.maxBytes));
      return;
    }
    readBody(request, response, declared, options, (error, body) => {
      if (error) {
        refuse(error);
      } else if (body) {
        request.body = body;
        next();
      }
      // Neither: the client went away mid-body; there is no one to answer.
    });
  };
}

function readBody(
  request: Request,
  response: Response,
  declared: number | undefined,
  { maxBytes, timeoutMs, budget }: WebhookBodyOptions,
  done: (error?: AppError, body?: Buffer) => void,
): void {
  let reserved = 0;
  const reserve = (bytes: number): boolean => {
    if (!budget.reserve(bytes)) {
      return false;
    }
    reserved += bytes;
    return true;
  };
  // The body is in use until its answer is sent (or the connection is gone).
  response.once('close', () => {
    budget.release(reserved);
    reserved = 0;
  });
  if (declared !== undefined && !reserve(declared)) {
    done(busy());
    return;
  }

  let body: Buffer | undefined;
  let length = 0;
  let finished = false;
  const finish = (error?: AppError, aborted = false): void => {
    if (finished) {
      return;
    }
    finished = true;
    clearTimeout(timer);
    request.off('data', onData);
    request.off('end', onEnd);
    request.off('error', onAborted);
    request.off('close', onAborted);
    if (error || aborted) {
      // Stop reading: the connection closes after the answer.
      request.pause();
      done(error);
    } else {
      done(undefined, body ? body.subarray(0, length) : Buffer.alloc(0));
    }
  };
  const onData = (chunk: Buffer): void => {
    const needed = length + chunk.length;
    if (needed > maxBytes) {
      finish(tooLarge(maxBytes)); // only without a Content-Length: Node holds a body to the one it declares
      return;
    }
    if (!body || needed > body.length) {
      if (declared !== undefined) {
        body = Buffer.allocUnsafeSlow(declared);
      } else {
        const capacity = Math.min(maxBytes, Math.max(needed, 2 * (body?.length ?? MIN_CHUNKED_CAPACITY / 2)));
        if (!reserve(capacity - (body?.length ?? 0))) {
          finish(busy());
          return;
        }
        const grown = Buffer.allocUnsafeSlow(capacity);
        body?.copy(grown, 0, 0, length);
        body = grown;
      }
    }
    chunk.copy(body, length);
    length = needed;
  };
  const onEnd = (): void => finish();
  const onAborted = (): void => finish(undefined, true);
  const timer = setTimeout(
    () =>
      finish(
        new AppError(
          ErrorCode.RequestTimeout,
          `The request body did not arrive within ${timeoutMs / 1000} seconds; Stripe sends its body at once.`,
        ),
      ),
    timeoutMs,
  );
  request.on('data', onData);
  request.on('end', onEnd);
  request.on('error', onAborted);
  request.on('close', onAborted);
}

/** The Content-Length as a number, or undefined without one (a chunked body). Node refuses a malformed one itself. */
function declaredLength(request: Request): number | undefined {
  const header = request.headers['content-length'];
  return header === undefined ? undefined : Number(header);
}

function tooLarge(maxBytes: number): AppError {
  return new AppError(ErrorCode.PayloadTooLarge, `The request body exceeds the limit of ${maxBytes} bytes.`);
}

function busy(): AppError {
  return new AppError(ErrorCode.Unavailable, 'Too many webhook bodies are being received at once; retry later.');
}
