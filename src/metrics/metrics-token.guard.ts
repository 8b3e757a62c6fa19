import { CanActivate, Injectable } from '@nestjs/common';
import type { ExecutionContext } from '@nestjs/common';
import { createHash, timingSafeEqual } from 'node:crypto';
import type { Request } from 'express';
import { AppError, ErrorCode } from '../common/app-error';
import { AppConfig } from '../config/app-config';

/**
 * GET /metrics is open unless METRICS_TOKEN is set; then a scrape must present it as
 * `Authorization: Bearer <token>`, compared as SHA-256 digests in constant time (as admin tokens are).
 */
@Injectable()
export class MetricsTokenGuard implements CanActivate {
  private readonly digest: Buffer | undefined;

  constructor(config: AppConfig) {
    this.digest = config.metricsToken === undefined ? undefined : sha256(config.metricsToken);
  }

  canActivate(context: ExecutionContext): boolean {
    if (!this.digest) {
      return true;
    }
    const header = context.switchToHttp().getRequest<Request>().headers.authorization;
    const match = typeof header === 'string' ? /^Bearer +(\S+) *$/i.exec(header) : null;
    if (!match || !timingSafeEqual(sha256(match[1]), this.digest)) {
      throw new AppError(ErrorCode.Unauthorized, 'A metrics token is required: Authorization: Bearer <METRICS_TOKEN>.');
    }
    return true;
  }
}

function sha256(value: string): Buffer {
  return createHash('sha256').update(value, 'utf8').digest();
}
