'use strict';

const { randomBytes } = require('node:crypto');
const { readFileSync } = require('node:fs');
const { join } = require('node:path');
const StripeModule = require('stripe');

const Stripe = StripeModule.default || StripeModule;
const ROOT = join(__dirname, '..', '..');
const FIXTURE = join(ROOT, 'test', 'fixtures', 'events', 'customer.subscription.updated.json');

/** The ids the fixture uses, replaced per event (see test/support/fixtures.ts). */
const FIXTURE_IDS = {
  event: 'evt_1QaZ4fLs8Hc4Vn6TpA3sD6fG',
  subscription: 'sub_1QaZ3bCdEfGh4567',
  customer: 'cus_Fx7Kq2LmN4pR8s',
};

/** The fixture as Stripe sends it (pretty-printed JSON, about 6 KB), parsed. */
function fixtureEvent() {
  return JSON.parse(readFileSync(FIXTURE, 'utf8'));
}

/**
 * Makes unique, realistic customer.subscription.updated bodies quickly: the fixture's text is split
 * once around its ids and `created`, and each body is joined from the parts with fresh values, so
 * building one costs a string join (the load generator shares two cores with what it measures).
 * Every body has a new event id, subscription id and customer id: every request is a new event.
 */
function eventFactory(tag) {
  let text = readFileSync(FIXTURE, 'utf8');
  text = text.split(`"${FIXTURE_IDS.event}"`).join('"{{E}}"');
  text = text.split(FIXTURE_IDS.subscription).join('{{S}}');
  text = text.split(`"${FIXTURE_IDS.customer}"`).join('"{{C}}"');
  text = text.replace(/^ {2}"created": \d+,$/m, '  "created": {{T}},');
  const pieces = text.split(/\{\{([ESCT])\}\}/);
  const run = randomBytes(4).toString('hex');
  let counter = 0;
  let lastId;
  return {
    /** Body of the next event; ids carry `tag` so that a phase's events can be found in the database. */
    next() {
      counter += 1;
      const n = `${tag}_${run}_${counter}`;
      const values = {
        E: `evt_${n}`,
        S: `sub_${n}`,
        C: `cus_${n}`,
        T: String(Math.floor(Date.now() / 1000)),
      };
      let body = '';
      for (let i = 0; i < pieces.length; i++) {
        body += i % 2 === 0 ? pieces[i] : values[pieces[i]];
      }
      lastId = values.E;
      return body;
    },
    /** Event id of the body `next()` returned last. */
    get lastId() {
      return lastId;
    },
    /** LIKE pattern matching the event ids this factory makes. */
    pattern: `evt\\_${tag.replace(/_/g, '\\_')}\\_${run}\\_%`,
    get count() {
      return counter;
    },
  };
}

/** The Stripe-Signature header for `payload`, as Stripe computes it (t=now, v1=HMAC-SHA256). */
function sign(payload, secret) {
  return Stripe.webhooks.generateTestHeaderString({ payload, secret });
}

/** Throws unless the header verifies with stripe-node's own verifier (a self-check of the bench). */
function verify(payload, header, secret) {
  Stripe.webhooks.signature.verifyHeader(payload, header, secret, 300);
}

module.exports = { eventFactory, fixtureEvent, sign, verify, FIXTURE_IDS, Stripe };
