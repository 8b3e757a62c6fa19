import 'reflect-metadata';
import { setFlagsFromString } from 'node:v8';
import { startService } from './app-setup';
import { errorMessage } from './common/error-message';
import { ConfigurationError } from './config/app-config';
import { readEnvironment } from './config/environment-source';

const print = (line: string): void => void process.stderr.write(`${line}\n`);

/**
 * How far V8 lets the old space grow past its live size before the next full collection. Under a
 * high allocation rate V8's own factor reaches 4, and the process held about 280 MB at 1,500
 * events/s; at 50 % it holds about 170 MB at the same throughput. This paces the collector: it is no
 * cap, the heap still grows as far as live data needs. A `--heap-growing-percent` given to node wins.
 */
const HEAP_GROWING_PERCENT = 50;
if (!process.execArgv.some((arg) => /^--heap[-_]growing[-_]percent/.test(arg))) {
  setFlagsFromString(`--heap-growing-percent=${HEAP_GROWING_PERCENT}`);
}

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
