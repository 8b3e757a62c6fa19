import { ArgumentsHost, Catch, ExceptionFilter, HttpException, Logger } from '@nestjs/common';
import type { Response } from 'express';
import { AppError, ErrorCode, errorCodeForStatus } from './app-error';
import { isDatabaseUnavailable } from './database-errors';

export interface ErrorBody {
  statusCode: number;
  error: string;
  message: string;
}

/**
 * The one place failures become HTTP answers: AppError, Nest's and body-parser's errors, and an
 * unreachable database (503, so that Stripe retries); anything else is a 500, logged in full.
 */
@Catch()
export class AllExceptionsFilter implements ExceptionFilter {
  private readonly logger = new Logger(AllExceptionsFilter.name);

  catch(exception: unknown, host: ArgumentsHost): void {
    const response = host.switchToHttp().getResponse<Response>();
    const body = toErrorBody(exception);
    if (body.statusCode >= 500 && body.error === (ErrorCode.Internal as string)) {
      this.logger.error({ err: exception }, 'unhandled error');
    }
    if (response.headersSent) {
      return;
    }
    response.locals.errorCode = body.error; // for the webhook metrics
    response.status(body.statusCode).json(body);
  }
}

export function toErrorBody(exception: unknown): ErrorBody {
  if (exception instanceof AppError) {
    return { statusCode: exception.status, error: exception.code, message: exception.message };
  }
  if (exception instanceof HttpException) {
    const status = exception.getStatus();
    const message =
      status === 413 ? 'The request body is larger than this endpoint accepts.' : httpExceptionMessage(exception);
    return { statusCode: status, error: errorCodeForStatus(status), message };
  }
  const bodyParserError = asBodyParserError(exception);
  if (bodyParserError) {
    return bodyParserError;
  }
  if (isDatabaseUnavailable(exception)) {
    return { statusCode: 503, error: ErrorCode.Unavailable, message: 'The database is unavailable; try again later.' };
  }
  return { statusCode: 500, error: ErrorCode.Internal, message: 'Internal server error.' };
}

function httpExceptionMessage(exception: HttpException): string {
  const response = exception.getResponse();
  if (typeof response === 'string') {
    return response;
  }
  const message = (response as { message?: unknown }).message;
  if (Array.isArray(message)) {
    return message.join('; ');
  }
  return typeof message === 'string' ? message : exception.message;
}

/** Errors thrown by body-parser carry `type` and `status` (e.g. entity.too.large / 413). */
function asBodyParserError(exception: unknown): ErrorBody | undefined {
  if (typeof exception !== 'object' || exception === null) {
    return undefined;
  }
  const { type, status, limit } = exception as { type?: unknown; status?: unknown; limit?: unknown };
  if (typeof type !== 'string' || typeof status !== 'number') {
    return undefined;
  }
  switch (type) {
    case 'entity.too.large':
      return {
        statusCode: 413,
        error: ErrorCode.PayloadTooLarge,
        message: `The request body exceeds the limit of ${String(limit)} bytes.`,
      };
    case 'entity.parse.failed':
      return { statusCode: 400, error: ErrorCode.InvalidRequest, message: 'The request body is not valid JSON.' };
    case 'encoding.unsupported':
    case 'charset.unsupported':
      return { statusCode: 415, error: ErrorCode.InvalidRequest, message: 'Unsupported content encoding or charset.' };
    case 'request.aborted':
      return { statusCode: 400, error: ErrorCode.InvalidRequest, message: 'The request was aborted.' };
    default:
      return { statusCode: status, error: errorCodeForStatus(status), message: 'The request body could not be read.' };
  }
}
