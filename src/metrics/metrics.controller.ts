import { Controller, Get, Res, UseGuards } from '@nestjs/common';
import { ApiOkResponse, ApiProduces, ApiTags, ApiUnauthorizedResponse } from '@nestjs/swagger';
import type { Response } from 'express';
import { MetricsTokenGuard } from './metrics-token.guard';
import { MetricsService } from './metrics.service';

@ApiTags('metrics')
@Controller('metrics')
export class MetricsController {
  constructor(private readonly metrics: MetricsService) {}

  /** Prometheus text format. */
  @Get()
  @UseGuards(MetricsTokenGuard)
  @ApiProduces('text/plain')
  @ApiOkResponse({
    schema: { type: 'string' },
    description:
      'Prometheus text exposition format: stripe_webhook_* counters, histograms and gauges, and Node default metrics. ' +
      'Open unless METRICS_TOKEN is set; then it needs Authorization: Bearer <METRICS_TOKEN>.',
  })
  @ApiUnauthorizedResponse({ description: 'unauthorized: METRICS_TOKEN is set and the request does not present it' })
  async scrape(@Res() response: Response): Promise<void> {
    const { contentType, body } = await this.metrics.render();
    response.setHeader('Content-Type', contentType);
    response.send(body);
  }
}
