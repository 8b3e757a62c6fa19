import { Injectable, Logger } from '@nestjs/common';
import { errorMessage } from '../common/error-message';
import { AppConfig } from '../config/app-config';

const ALERT_TIMEOUT_MS = 5_000;

/**
 * Posts `{"text": …}` to ALERT_WEBHOOK_URL; never throws or waits more than 5 s, so that a failing
 * alert endpoint cannot affect processing. The URL is a credential and is never logged.
 */
@Injectable()
export class AlertService {
  private readonly logger = new Logger(AlertService.name);

  constructor(private readonly config: AppConfig) {}

  get enabled(): boolean {
    return this.config.alertWebhookUrl !== undefined;
  }

  async send(text: string): Promise<boolean> {
    const url = this.config.alertWebhookUrl;
    if (!url) {
      return false;
    }
    try {
      const response = await fetch(url, {
        method: 'POST',
        headers: { 'Content-Type': 'application/json' },
        body: JSON.stringify({ text }),
        signal: AbortSignal.timeout(ALERT_TIMEOUT_MS),
      });
      if (!response.ok) {
        this.logger.warn({ status: response.status }, 'alert endpoint refused the alert');
        return false;
      }
      return true;
    } catch (error) {
      this.logger.warn({ error: errorMessage(error) }, 'alert could not be sent');
      return false;
    }
  }
}
