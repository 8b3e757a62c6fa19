'use strict';

const { sign } = require('./events');

let autocannon;
try {
  autocannon = require('autocannon');
} catch {
  autocannon = undefined;
}

/**
 * POSTs signed, unique Stripe events to `${url}/webhooks/stripe` with autocannon: `connections`
 * keep-alive connections, one request in flight on each (no pipelining), for `duration` seconds,
 * optionally at a fixed `overallRate` (requests/s over all connections; latencies are then corrected
 * for coordinated omission). Each request gets a fresh body from `factory` and its own signature.
 */
function fire({ url, connections, duration, factory, secret, overallRate }) {
  if (!autocannon) {
    throw new Error(
      'autocannon is not installed: it is a devDependency from commit 707045b on; run `npm ci` on a checkout ' +
        'that has it (or `npm install --no-save autocannon@9.0.0`)',
    );
  }
  let unexpected = 0;
  const acknowledged = [];
  return new Promise((resolve, reject) => {
    autocannon(
      {
        url,
        connections,
        duration,
        pipelining: 1,
        timeout: 10,
        ...(overallRate ? { overallRate } : {}),
        requests: [
          {
            method: 'POST',
            path: '/webhooks/stripe',
            // One request in flight per connection, and autocannon keeps a context per connection
            // until the response is recorded: it tells which event a response acknowledges.
            setupRequest: (request, context) => {
              const body = factory.next();
              context.eventId = factory.lastId;
              request.body = body;
              request.headers['content-type'] = 'application/json; charset=utf-8';
              request.headers['stripe-signature'] = sign(body, secret);
              request.headers['user-agent'] = 'Stripe/1.0 (+https://stripe.com/docs/webhooks)';
              return request;
            },
            // A 200 that is not a plain acknowledgement (say, a duplicate) counts as unexpected.
            onResponse: (status, body, context) => {
              if (status === 200 && body !== '{"received":true}') {
                unexpected++;
              }
              if (status === 200) {
                acknowledged.push(context.eventId);
              }
            },
          },
        ],
      },
      (error, result) => (error ? reject(error) : resolve(Object.assign(result, { unexpected, acknowledged }))),
    );
  });
}

/** The figures kept from an autocannon result. */
function figures(result) {
  const l = result.latency;
  return {
    rps: result.requests.average,
    ok: result['2xx'],
    non2xx: result.non2xx,
    errors: result.errors,
    timeouts: result.timeouts,
    unexpected: result.unexpected,
    durationSeconds: result.duration,
    latencyMs: { p50: l.p50, p90: l.p90, p99: l.p99, max: l.max, mean: l.average },
    statusCodes: result.statusCodeStats,
  };
}

module.exports = { fire, figures, available: () => Boolean(autocannon) };
