import { randomBytes } from 'node:crypto';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';

/* eslint-disable @typescript-eslint/no-explicit-any -- fixtures are free-form Stripe JSON */
export type StripeJson = Record<string, any>;

/** The ids the fixtures share (see test/fixtures/events/README.md). */
export const FIXTURE_WORLD = {
  customer: 'cus_Fx7Kq2LmN4pR8s',
  subscription: 'sub_1QaZ3bCdEfGh4567',
  user: 'user_42',
  firstInvoice: 'in_1QaZ3cKp7tW2xYvN9mB4rL0s',
  renewalInvoice: 'in_1Qn8FhT3uV6wX9yZ2aB5cD7e',
  topUp: 'pi_3TopUp00000001',
  failedTopUp: 'pi_3TopUpFail0001',
  topUpSession: 'cs_test_a1m3W0e2vfw3TFbE5iw5OZ7NjfgMUsC1nhvCIDNb76xxP8McqTxLZbqVCb',
};
export type World = typeof FIXTURE_WORLD;

/** test/fixtures/events of the checkout this file is in (as source, or compiled anywhere below it). */
export function fixturesDirectory(): string {
  for (let directory = __dirname; ; directory = dirname(directory)) {
    const candidate = join(directory, 'test', 'fixtures', 'events');
    if (existsSync(candidate)) {
      return candidate;
    }
    if (dirname(directory) === directory) {
      throw new Error('test/fixtures/events not found (run from a checkout of the project)');
    }
  }
}

export function fixtureNames(): string[] {
  return readdirSync(fixturesDirectory())
    .filter((f) => f.endsWith('.json'))
    .map((f) => f.slice(0, -'.json'.length))
    .sort();
}

/** Fresh ids for every shared object, so that events for different worlds do not collide. */
export function newWorld(): World {
  const suffix = randomBytes(6).toString('hex');
  return Object.fromEntries(Object.entries(FIXTURE_WORLD).map(([k, v]) => [k, `${v}_${suffix}`])) as World;
}

/**
 * A fixture event (file name without .json) with the world's ids in place of the fixtures' own and
 * a fresh event id; `world` defaults to the fixtures' ids.
 */
export function fixtureEvent(name: string, world: World = FIXTURE_WORLD): StripeJson {
  let text = readFileSync(join(fixturesDirectory(), `${name}.json`), 'utf8');
  for (const key of Object.keys(FIXTURE_WORLD) as Array<keyof World>) {
    text = text.split(`"${FIXTURE_WORLD[key]}"`).join(`"${world[key]}"`);
  }
  const event = JSON.parse(text) as StripeJson;
  event.id = `evt_${randomBytes(12).toString('hex')}`;
  return event;
}
