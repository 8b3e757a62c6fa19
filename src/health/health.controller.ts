import { Controller, Get, HttpStatus, Res, ServiceUnavailableException } from '@nestjs/common';
import { ApiOkResponse, ApiServiceUnavailableResponse, ApiTags } from '@nestjs/swagger';
import { HealthCheckService, HealthIndicatorFunction } from '@nestjs/terminus';
import type { Response } from 'express';
import { DatabaseIndicators } from './database.indicators';
import { WebhooksIndicator } from './webhooks.indicator';

/**
 * Kubernetes probes, in @nestjs/terminus's format. Failures are answered here with terminus's own
 * body (not the API error shape), because probes and dashboards read that format.
 */
@ApiTags('health')
@ApiOkResponse({ description: 'terminus format: {"status":"ok","info":{…},"error":{},"details":{…}}' })
@ApiServiceUnavailableResponse({ description: 'the same format with "status":"error"' })
@Controller('health')
export class HealthController {
  constructor(
    private readonly health: HealthCheckService,
    private readonly database: DatabaseIndicators,
    private readonly webhooks: WebhooksIndicator,
  ) {}

  /** 200 while the process runs; touches no database. */
  @Get('live')
  async live(@Res() response: Response): Promise<void> {
    await this.answer(response, []);
  }

  /** 200 when the database answers, migrations are applied and the replica is not shutting down. */
  @Get('ready')
  async ready(@Res() response: Response): Promise<void> {
    await this.answer(response, [() => this.database.ping('database'), () => this.database.migrations('migrations')]);
  }

  /** The database and the webhook backlog (figures at most 5 s old); 503 when the database is down. */
  @Get('webhooks')
  async webhooksHealth(@Res() response: Response): Promise<void> {
    await this.answer(response, [() => this.database.ping('database'), () => this.webhooks.check('webhooks')]);
  }

  private async answer(response: Response, checks: HealthIndicatorFunction[]): Promise<void> {
    try {
      response.status(HttpStatus.OK).json(await this.health.check(checks));
    } catch (error) {
      if (error instanceof ServiceUnavailableException) {
        response.status(HttpStatus.SERVICE_UNAVAILABLE).json(error.getResponse());
        return;
      }
      throw error;
    }
  }
}
