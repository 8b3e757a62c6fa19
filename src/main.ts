import 'reflect-metadata';
import { startService } from './app-setup';
import { errorMessage } from './common/error-message';
import { ConfigurationError } from './config/app-config';
import { readEnvironment } from './config/environment-source';

const print = (line: string): void => void process.stderr.write(`${line}\n`);

async function main(): Promise<void> {
  let service: Awaited<ReturnType<typeof startService>>;
  try {
    service = await startService(readEnvironment(), print);
  } catch (error) {
    print(error instanceof ConfigurationError ? error.message : `Start-up failed: ${errorMessage(error)}`);
    process.exit(1);
  }
  print(`stripe-webhook-processor listening on ${service.url} (POST /webhooks/stripe)`);

  let stopping = false;
  const stop = (signal: NodeJS.Signals): void => {
    if (stopping) {
      return;
    }
    stopping = true;
    print(`${signal} received: draining and shutting down`);
    // Past this the process gives up and exits 1 (an orchestrator would SIGKILL it anyway).
    setTimeout(() => {
      print('shutdown did not finish in time; exiting');
      process.exit(1);
    }, service.shutdownDeadlineMs).unref();
    service.stop().then(
      () => process.exit(0),
      (error: unknown) => {
        print(`shutdown failed: ${errorMessage(error)}`);
        process.exit(1);
      },
    );
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
}

void main();
