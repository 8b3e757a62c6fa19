import { CanActivate, ExecutionContext, Injectable } from '@nestjs/common';
import { createHash, timingSafeEqual } from 'node:crypto';
import type { Request } from 'express';
import { AppError, ErrorCode } from './app-error';
import { AppConfig } from '../config/app-config';

/** The holder of the bearer token that authorised a request; written to the audit log. */
export interface AdminRequest extends Request {
  adminActor?: string;
}

/**
 * `Authorization: Bearer <token>` for the admin and product APIs, compared with every configured
 * token as SHA-256 digests (timingSafeEqual), so that neither content nor length leaks through timing.
 */
@Injectable()
export class AdminTokenGuard implements CanActivate {
  private readonly tokens: ReadonlyArray<{ name: string; digest: Buffer }>;

  constructor(config: AppConfig) {
    this.tokens = config.adminTokens.map(({ name, token }) => ({ name, digest: sha256(token) }));
  }

  canActivate(context: ExecutionContext): boolean {
    const request = context.switchToHttp().getRequest<AdminRequest>();
    const header = request.headers.authorization;
    const match = typeof header === 'string' ? /^Bearer +(\S+) *$/i.exec(header) : null;
    if (!match) {
      throw new AppError(
        ErrorCode.Unauthorized,
        'An admin token is required: Authorization: Bearer <ADMIN_API_TOKEN>.',
      );
    }
    const presented = sha256(match[1]);
    let holder: string | undefined;
    for (const { name, digest } of this.tokens) {
      if (timingSafeEqual(presented, digest) && holder === undefined) {
        holder = name;
      }
    }
    if (holder === undefined) {
      throw new AppError(ErrorCode.Unauthorized, 'The admin token is not valid.');
    }
    request.adminActor = holder;
    return true;
  }
}

function sha256(value: string): Buffer {
  return createHash('sha256').update(value, 'utf8').digest();
}
