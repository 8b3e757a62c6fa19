import { RateLimiter } from 'limiter';
import Stripe from 'stripe';

type HttpClient = ReturnType<typeof Stripe.createNodeHttpClient>;

/**
 * stripe-node's own Node HTTP client, each request of which first waits for the process's budget,
 * then for the service's (`shared`, every replica together): every request counts, stripe-node's
 * retries included. The process's budget is a bucket holding one request, refilled every 1/rps
 * seconds, so a replica's requests are spread evenly and any one-second window holds at most rps of
 * them (rps + 1 counting both ends); a bigger bucket would let a burst of rps through and then rps
 * more within the same second.
 */
export function rateLimitedHttpClient(requestsPerSecond: number, shared?: () => Promise<void>): HttpClient {
  const inner = Stripe.createNodeHttpClient();
  const budget = new RateLimiter({ tokensPerInterval: 1, interval: 1000 / requestsPerSecond });
  const makeRequest = inner.makeRequest.bind(inner);
  inner.makeRequest = async (...args: Parameters<HttpClient['makeRequest']>) => {
    await budget.removeTokens(1);
    await shared?.();
    return makeRequest(...args);
  };
  return inner;
}
