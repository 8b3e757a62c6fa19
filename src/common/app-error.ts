import { HttpStatus } from '@nestjs/common';

/** The `error` codes of the JSON error shape: `{"statusCode", "error", "message"}`. */
export enum ErrorCode {
  InvalidSignature = 'invalid_signature',
  InvalidPayload = 'invalid_payload',
  PayloadTooLarge = 'payload_too_large',
  RequestTimeout = 'request_timeout',
  UnsupportedEncoding = 'unsupported_encoding',
  InvalidRequest = 'invalid_request',
  Unauthorized = 'unauthorized',
  NotFound = 'not_found',
  Conflict = 'conflict',
  Unavailable = 'unavailable',
  Internal = 'internal_error',
}

const STATUS_BY_CODE: Record<ErrorCode, HttpStatus> = {
  [ErrorCode.InvalidSignature]: HttpStatus.BAD_REQUEST,
  [ErrorCode.InvalidPayload]: HttpStatus.BAD_REQUEST,
  [ErrorCode.PayloadTooLarge]: HttpStatus.PAYLOAD_TOO_LARGE,
  [ErrorCode.RequestTimeout]: HttpStatus.REQUEST_TIMEOUT,
  [ErrorCode.UnsupportedEncoding]: HttpStatus.UNSUPPORTED_MEDIA_TYPE,
  [ErrorCode.InvalidRequest]: HttpStatus.BAD_REQUEST,
  [ErrorCode.Unauthorized]: HttpStatus.UNAUTHORIZED,
  [ErrorCode.NotFound]: HttpStatus.NOT_FOUND,
  [ErrorCode.Conflict]: HttpStatus.CONFLICT,
  [ErrorCode.Unavailable]: HttpStatus.SERVICE_UNAVAILABLE,
  [ErrorCode.Internal]: HttpStatus.INTERNAL_SERVER_ERROR,
};

/** The one exception type of this service; the exception filter turns it into the JSON error shape. */
export class AppError extends Error {
  readonly status: HttpStatus;

  constructor(
    readonly code: ErrorCode,
    message: string,
  ) {
    super(message);
    this.name = 'AppError';
    this.status = STATUS_BY_CODE[code];
  }
}

/** The code used for a status that did not come from an AppError (Nest's own 404, a body parser's 413 …). */
export function errorCodeForStatus(status: number): ErrorCode {
  switch (status) {
    case 400:
      return ErrorCode.InvalidRequest;
    case 401:
      return ErrorCode.Unauthorized;
    case 404:
      return ErrorCode.NotFound;
    case 408:
      return ErrorCode.RequestTimeout;
    case 409:
      return ErrorCode.Conflict;
    case 413:
      return ErrorCode.PayloadTooLarge;
    case 415:
      return ErrorCode.UnsupportedEncoding;
    case 503:
      return ErrorCode.Unavailable;
    default:
      return status >= 500 ? ErrorCode.Internal : ErrorCode.InvalidRequest;
  }
}
