import { Controller, Get, Logger, Param, Res } from '@nestjs/common';
import { ApiExcludeEndpoint, ApiOkResponse, ApiTags } from '@nestjs/swagger';
import type { Response } from 'express';
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { AppError, ErrorCode } from '../common/app-error';

/**
 * The console's rules: its own scripts and styles only (no inline script, no style attribute), API
 * calls to this service only, never framed. uPlot styles its canvas through the CSSOM, which a
 * style-src without 'unsafe-inline' allows.
 */
export const CONSOLE_CSP = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self' data:",
  "connect-src 'self'",
  "base-uri 'none'",
  "form-action 'none'",
  "frame-ancestors 'none'",
].join('; ');

const FILES: Record<string, string> = {
  'index.html': 'text/html; charset=utf-8',
  'app.js': 'text/javascript; charset=utf-8',
  'app.css': 'text/css; charset=utf-8',
};

/**
 * GET /admin/console: the operators' web console, a static page bundled by `npm run build` into
 * dist/console. It holds no data: signed in with an admin token, it calls the admin API like any
 * client. Served without the token guard (the page itself is public; every call it makes is not).
 */
@ApiTags('admin')
@Controller('admin/console')
export class ConsoleController {
  private readonly logger = new Logger(ConsoleController.name);
  private readonly directory = bundleDirectory();
  private readonly cache = new Map<string, Buffer>();

  @Get()
  @ApiOkResponse({ description: 'the web console (HTML); sign in with an admin token' })
  page(@Res() response: Response): Promise<void> {
    return this.send(response, 'index.html', 'no-store');
  }

  @Get(':file')
  @ApiExcludeEndpoint()
  asset(@Param('file') file: string, @Res() response: Response): Promise<void> {
    if (!Object.hasOwn(FILES, file) || file === 'index.html') {
      throw new AppError(ErrorCode.NotFound, 'No such console file.');
    }
    return this.send(response, file, 'no-cache');
  }

  private async send(response: Response, file: string, cacheControl: string): Promise<void> {
    let body = this.cache.get(file);
    if (!body) {
      try {
        body = await readFile(join(this.directory, file));
      } catch {
        this.logger.warn({ directory: this.directory }, 'the console is not built (npm run build)');
        throw new AppError(ErrorCode.NotFound, 'The console is not built in this installation (npm run build).');
      }
      this.cache.set(file, body);
    }
    response
      .status(200)
      .set({
        'Content-Type': FILES[file],
        'Cache-Control': cacheControl,
        'Content-Security-Policy': CONSOLE_CSP,
        'X-Content-Type-Options': 'nosniff',
        'X-Frame-Options': 'DENY',
        'Referrer-Policy': 'no-referrer',
        'Cross-Origin-Opener-Policy': 'same-origin',
      })
      .send(body);
  }
}

/** dist/console of the installation: beside the compiled service, also when tests run the sources. */
function bundleDirectory(): string {
  for (let directory = __dirname; ; directory = dirname(directory)) {
    if (existsSync(join(directory, 'package.json'))) {
      return join(directory, 'dist', 'console');
    }
    if (dirname(directory) === directory) {
      return join(__dirname, '..', '..', 'console');
    }
  }
}
