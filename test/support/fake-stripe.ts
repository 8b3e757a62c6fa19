import { createServer, IncomingHttpHeaders, IncomingMessage, Server, ServerResponse } from 'node:http';
import type { Socket } from 'node:net';

/* eslint-disable @typescript-eslint/no-explicit-any -- Stripe objects are free-form JSON */
type StripeJson = Record<string, any>;

/** One request as the fake received it. */
export interface RecordedRequest {
  /** Date.now() when the request arrived. */
  time: number;
  method: string;
  path: string;
  /** The query as Stripe reads it: `created[gte]=1` → `{created: {gte: '1'}}`, `types[0]=a` → `{types: ['a']}`. */
  query: Record<string, any>;
  rawQuery: string;
  headers: IncomingHttpHeaders;
  /** The `Stripe-Context` header (the connected account a thin event names), when sent. */
  stripeContext?: string;
  /** The `Stripe-Account` header: the connected account the request is made for; null for the platform. */
  account: string | null;
}

/**
 * How the fake answers a request it is told to fail: an HTTP status with Stripe's error JSON, a 200
 * whose list is not a list (`malformed`), a 200 whose JSON is cut short (`truncated`), or a closed
 * connection with no answer (`drop`).
 */
export type Failure = 429 | 500 | 503 | 401 | 403 | 'malformed' | 'truncated' | 'drop';

export interface FailureRule {
  failure: Failure;
  /** How many matching requests fail (default 1); Infinity for a storm. */
  times?: number;
  /** Matching requests let through before the failures start (default 0). */
  skip?: number;
  /** Which requests the rule is about (default: every request). */
  when?: (request: RecordedRequest) => boolean;
}

interface ActiveEntitlement {
  id: string;
  object: 'entitlements.active_entitlement';
  feature: string;
  livemode: boolean;
  lookup_key: string;
}

/** What Stripe holds in one account: its events, newest first, and its customers' active entitlements. */
class AccountBook {
  readonly events: StripeJson[] = [];
  readonly eventIds = new Map<string, StripeJson>();
  readonly entitlements = new Map<string, ActiveEntitlement[]>();
  /** Where each event stands in `events` (a cursor); rebuilt after events are added. */
  positions: Map<string, number> | undefined;
}

/** The platform's own account among the books. */
const PLATFORM = '';

/** The Events API keeps 30 days of events. */
const EVENT_RETENTION_SECONDS = 30 * 24 * 3600;
/** Stripe accepts at most 20 event types in `types[]`. */
const MAX_TYPES = 20;

/**
 * A local stand-in for the parts of Stripe's API this service reads, behaving as Stripe documents
 * them: `GET /v1/events` (newest first, `limit` ≤ 100, `starting_after`/`ending_before`, `created`
 * as a number or a range, `type` with `*` wildcards or `types[]`, events older than 30 days gone),
 * `GET /v1/events/:id` (404 `resource_missing` for an id it does not hold, as for a thin event's
 * snapshot Stripe does not know), and `GET /v1/entitlements/active_entitlements?customer=` (paged). Requests
 * need `Authorization: Bearer <apiKey>` (else 401); unknown ids get 404, bad parameters 400, in
 * Stripe's error JSON. A scripted failure plan makes chosen requests fail, and every request is
 * recorded (time, method, path, query, headers, the Stripe-Account it was made for).
 *
 * Connect: each account holds its own events and entitlements. A request with `Stripe-Account:
 * acct_…` reads that account's, one without reads the platform's; an event is held by the account
 * its `account` names (the platform when it has none).
 */
export class FakeStripe {
  readonly requests: RecordedRequest[] = [];
  private readonly books = new Map<string, AccountBook>();
  private readonly rules: Array<Required<Omit<FailureRule, 'when'>> & Pick<FailureRule, 'when'>> = [];
  private readonly forbidden: string[] = [];
  private readonly holds: Array<{ when: (request: RecordedRequest) => boolean; released: Promise<void> }> = [];
  private readonly sockets = new Set<Socket>();
  private sequence = 0;

  private constructor(
    private readonly server: Server,
    readonly apiKey: string,
  ) {}

  static async start(apiKey = 'sk_test_fake_0123456789abcdefghij'): Promise<FakeStripe> {
    const server = createServer();
    const fake = new FakeStripe(server, apiKey);
    server.on('connection', (socket) => {
      fake.sockets.add(socket);
      socket.on('close', () => fake.sockets.delete(socket));
    });
    server.on('request', (req, res) => fake.handle(req, res));
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    return fake;
  }

  /** `http://127.0.0.1:<port>`, as STRIPE_API_BASE. */
  get url(): string {
    const address = this.server.address();
    return `http://127.0.0.1:${typeof address === 'object' && address ? address.port : 0}`;
  }

  get port(): number {
    return Number(new URL(this.url).port);
  }

  /**
   * Events Stripe holds, each in the account its `account` names (else the platform's), or all in
   * `account` when given; listed newest `created` first (later additions first within one second).
   */
  addEvents(events: StripeJson[], account?: string): void {
    const touched = new Set<AccountBook>();
    for (const event of events) {
      const book = this.book(account ?? (event.account as string | undefined) ?? PLATFORM);
      if (book.eventIds.has(event.id as string)) {
        throw new Error(`the fake already holds ${String(event.id)}`);
      }
      const stored = { ...event, __seq: this.sequence++ };
      book.eventIds.set(event.id as string, stored);
      book.events.push(stored);
      touched.add(book);
    }
    for (const book of touched) {
      book.events.sort((a, b) => b.created - a.created || b.__seq - a.__seq);
      book.positions = undefined;
    }
  }

  /**
   * The customer's active entitlements, as `GET /v1/entitlements/active_entitlements` lists them, in
   * the platform's account or in connected account `account`.
   */
  setActiveEntitlements(
    customer: string,
    entries: Array<{ lookup_key: string; feature: string }>,
    account: string = PLATFORM,
  ): void {
    this.book(account).entitlements.set(
      customer,
      entries.map((entry, i) => ({
        id: `ent_test_${customer}_${i}`,
        object: 'entitlements.active_entitlement',
        feature: entry.feature,
        livemode: false,
        lookup_key: entry.lookup_key,
      })),
    );
  }

  /** Adds a rule to the failure plan; rules are tried in order, the first that applies answers. */
  fail(rule: FailureRule): void {
    this.rules.push({ times: 1, skip: 0, ...rule });
  }

  /**
   * Keeps matching requests waiting (recorded, unanswered) until `release()`: a sweep caught in the
   * middle of a page.
   */
  hold(when: (request: RecordedRequest) => boolean = () => true): { release(): void } {
    let release!: () => void;
    const released = new Promise<void>((resolve) => (release = resolve));
    const entry = { when, released };
    this.holds.push(entry);
    return {
      release: () => {
        this.holds.splice(this.holds.indexOf(entry), 1);
        release();
      },
    };
  }

  /** The key lacks the permission for paths starting with `prefix` (a restricted key): 403. */
  denyPermission(prefix: string): void {
    this.forbidden.push(prefix);
  }

  /** Forgets the failure plan and denied permissions. */
  heal(): void {
    this.rules.splice(0);
    this.forbidden.splice(0);
  }

  /** Recorded requests to paths starting with `prefix`. */
  requestsTo(prefix: string): RecordedRequest[] {
    return this.requests.filter((r) => r.path.startsWith(prefix));
  }

  private book(account: string): AccountBook {
    let book = this.books.get(account);
    if (!book) {
      book = new AccountBook();
      this.books.set(account, book);
    }
    return book;
  }

  async close(): Promise<void> {
    for (const socket of this.sockets) {
      socket.destroy();
    }
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  private handle(req: IncomingMessage, res: ServerResponse): void {
    const url = new URL(req.url ?? '/', 'http://fake');
    const request: RecordedRequest = {
      time: Date.now(),
      method: req.method ?? 'GET',
      path: url.pathname,
      query: parseStripeQuery(url.searchParams),
      rawQuery: url.search.replace(/^\?/, ''),
      headers: req.headers,
      stripeContext: typeof req.headers['stripe-context'] === 'string' ? req.headers['stripe-context'] : undefined,
      account: typeof req.headers['stripe-account'] === 'string' ? req.headers['stripe-account'] : null,
    };
    this.requests.push(request);
    req.resume();
    req.on('end', () => {
      const held = this.holds.find((h) => h.when(request));
      if (held) {
        void held.released.then(() => this.answer(request, req, res));
      } else {
        this.answer(request, req, res);
      }
    });
  }

  private answer(request: RecordedRequest, req: IncomingMessage, res: ServerResponse): void {
    const send = (status: number, body: unknown): void => {
      res.writeHead(status, { 'Content-Type': 'application/json', 'Request-Id': `req_${this.requests.length}` });
      res.end(JSON.stringify(body));
    };
    const authorization = request.headers.authorization ?? '';
    const presented = /^Bearer (\S+)$/.exec(authorization)?.[1];
    if (presented !== this.apiKey) {
      send(401, stripeError('invalid_request_error', 'api_key_invalid', invalidKeyMessage(presented)));
      return;
    }
    const failure = this.failureFor(request);
    if (failure !== undefined) {
      this.injure(failure, req, res, send);
      return;
    }
    if (this.forbidden.some((prefix) => request.path.startsWith(prefix))) {
      send(403, permissionDenied());
      return;
    }
    if (request.method !== 'GET') {
      send(
        404,
        stripeError(
          'invalid_request_error',
          'resource_missing',
          `Unrecognized request URL (${request.method}: ${request.path}).`,
        ),
      );
      return;
    }
    try {
      const answer = this.route(request);
      send(
        answer ? 200 : 404,
        answer ??
          stripeError('invalid_request_error', 'resource_missing', `Unrecognized request URL (GET: ${request.path}).`),
      );
    } catch (error) {
      if (error instanceof BadRequest) {
        send(error.status, stripeError('invalid_request_error', error.code, error.message, error.param));
        return;
      }
      send(500, stripeError('api_error', 'internal', 'An unknown error occurred in the fake.'));
    }
  }

  private route(request: RecordedRequest): unknown {
    // Stripe-Context names the account as Stripe-Account does (thin events' fetches send it).
    const book = this.book(request.account ?? request.stripeContext ?? PLATFORM);
    if (request.path === '/v1/events') {
      return this.listEvents(book, request.query);
    }
    const eventMatch = /^\/v1\/events\/([^/]+)$/.exec(request.path);
    if (eventMatch) {
      const event = book.eventIds.get(decodeURIComponent(eventMatch[1]));
      if (!event || !this.visible(event)) {
        throw new BadRequest(404, 'resource_missing', `No such event: '${decodeURIComponent(eventMatch[1])}'`, 'id');
      }
      return withoutSequence(event);
    }
    if (request.path === '/v1/entitlements/active_entitlements') {
      const customer = request.query.customer as unknown;
      if (typeof customer !== 'string' || customer === '') {
        throw new BadRequest(400, 'parameter_missing', 'Missing required param: customer.', 'customer');
      }
      return page(book.entitlements.get(customer) ?? [], request.query, '/v1/entitlements/active_entitlements');
    }
    return undefined;
  }

  private listEvents(book: AccountBook, query: Record<string, any>): unknown {
    if (query.type !== undefined && query.types !== undefined) {
      throw new BadRequest(400, 'parameter_invalid', 'You may pass either type or types, but not both.', 'types');
    }
    const types = query.types as unknown;
    if (types !== undefined && (!Array.isArray(types) || types.length > MAX_TYPES)) {
      throw new BadRequest(
        400,
        'parameter_invalid',
        `types must be an array of at most ${MAX_TYPES} strings.`,
        'types',
      );
    }
    const typeFilter = (type: string): boolean => {
      if (Array.isArray(types)) {
        return (types as string[]).includes(type);
      }
      if (typeof query.type === 'string') {
        const pattern = new RegExp(`^${query.type.split('*').map(escapeRegExp).join('.*')}$`);
        return pattern.test(type);
      }
      return true;
    };
    const created = createdFilter(query.created);
    const matching = (e: StripeJson): boolean => typeFilter(e.type as string) && created(e.created as number);
    return page(
      book.events,
      query,
      '/v1/events',
      (e) => this.visible(e) && matching(e),
      (id) => positionOf(book, id),
    );
  }

  private visible(event: StripeJson): boolean {
    return event.created >= Math.floor(Date.now() / 1000) - EVENT_RETENTION_SECONDS;
  }

  private failureFor(request: RecordedRequest): Failure | undefined {
    for (const rule of this.rules) {
      if (rule.times <= 0 || (rule.when && !rule.when(request))) {
        continue;
      }
      if (rule.skip > 0) {
        rule.skip--;
        continue;
      }
      rule.times--;
      return rule.failure;
    }
    return undefined;
  }

  private injure(
    failure: Failure,
    req: IncomingMessage,
    res: ServerResponse,
    send: (status: number, body: unknown) => void,
  ): void {
    switch (failure) {
      case 429:
        send(429, stripeError('invalid_request_error', 'rate_limit', 'Request rate limit exceeded.'));
        return;
      case 500:
      case 503:
        send(failure, stripeError('api_error', 'internal', 'An unknown error occurred.'));
        return;
      case 401:
        send(401, stripeError('invalid_request_error', 'api_key_invalid', invalidKeyMessage(this.apiKey)));
        return;
      case 403:
        send(403, permissionDenied());
        return;
      case 'malformed':
        send(200, { object: 'list', data: { not: 'an array' }, has_more: false, url: '/v1/events' });
        return;
      case 'truncated':
        res.writeHead(200, { 'Content-Type': 'application/json' });
        res.end('{"object":"list","data":[{"id":"evt_');
        return;
      case 'drop':
        req.socket.destroy();
        return;
    }
  }
}

/** Where an event stands in its account's list (a cursor), or -1. */
function positionOf(book: AccountBook, id: unknown): number {
  if (!book.positions) {
    book.positions = new Map(book.events.map((e, i) => [e.id as string, i]));
  }
  return typeof id === 'string' ? (book.positions.get(id) ?? -1) : -1;
}

class BadRequest extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly param?: string,
  ) {
    super(message);
  }
}

/** A page of `items` (already in list order) after the cursor, as Stripe's list endpoints answer. */
function page<T extends { id: string } | StripeJson>(
  items: T[],
  query: Record<string, any>,
  url: string,
  matching: (item: T) => boolean = () => true,
  indexOf: (id: unknown) => number = (id) => items.findIndex((item) => item.id === id),
): unknown {
  const limit = query.limit === undefined ? 10 : Number(query.limit);
  if (!Number.isInteger(limit) || limit < 1 || limit > 100) {
    throw new BadRequest(
      400,
      'parameter_invalid_integer',
      'Invalid integer: limit must be between 1 and 100.',
      'limit',
    );
  }
  if (query.starting_after !== undefined && query.ending_before !== undefined) {
    throw new BadRequest(
      400,
      'parameter_invalid',
      'You may pass either starting_after or ending_before, not both.',
      'ending_before',
    );
  }
  const cursorIndex = (param: 'starting_after' | 'ending_before'): number => {
    const index = indexOf(query[param]);
    if (index < 0) {
      throw new BadRequest(400, 'resource_missing', `No such object: '${String(query[param])}'`, param);
    }
    return index;
  };
  // Scans away from the cursor only as far as one item past the page (has_more), whatever the list's size.
  const backwards = query.ending_before !== undefined;
  const step = backwards ? -1 : 1;
  let i = backwards
    ? cursorIndex('ending_before') - 1
    : query.starting_after !== undefined
      ? cursorIndex('starting_after') + 1
      : 0;
  const found: T[] = [];
  for (; i >= 0 && i < items.length && found.length <= limit; i += step) {
    if (matching(items[i])) {
      found.push(items[i]);
    }
  }
  const data = found.slice(0, limit);
  if (backwards) {
    data.reverse(); // the items nearest before the cursor, in list order
  }
  return { object: 'list', data: data.map(withoutSequence), has_more: found.length > limit, url };
}

function createdFilter(created: unknown): (seconds: number) => boolean {
  if (created === undefined) {
    return () => true;
  }
  const number = (value: unknown, param: string): number => {
    const n = Number(value);
    if (typeof value !== 'string' || !/^\d+$/.test(value)) {
      throw new BadRequest(400, 'parameter_invalid_integer', `Invalid integer: ${String(value)}`, param);
    }
    return n;
  };
  if (typeof created === 'string') {
    const exact = number(created, 'created');
    return (s) => s === exact;
  }
  const range = created as Record<string, unknown>;
  const known = ['gt', 'gte', 'lt', 'lte'];
  for (const key of Object.keys(range)) {
    if (!known.includes(key)) {
      throw new BadRequest(400, 'parameter_unknown', `Received unknown parameter: created[${key}]`, `created[${key}]`);
    }
  }
  const bounds = Object.fromEntries(Object.entries(range).map(([k, v]) => [k, number(v, `created[${k}]`)]));
  return (s) =>
    (bounds.gt === undefined || s > bounds.gt) &&
    (bounds.gte === undefined || s >= bounds.gte) &&
    (bounds.lt === undefined || s < bounds.lt) &&
    (bounds.lte === undefined || s <= bounds.lte);
}

/** The most requests any window of `windowMs` holds (windows start at each request). */
export function busiestWindow(times: number[], windowMs = 1_000): number {
  const sorted = [...times].sort((a, b) => a - b);
  let most = 0;
  for (let i = 0; i < sorted.length; i++) {
    let j = i;
    while (j < sorted.length && sorted[j] - sorted[i] <= windowMs) {
      j++;
    }
    most = Math.max(most, j - i);
  }
  return most;
}

/** Stripe's bracket notation, one level deep: `a[b]=1` → `{a: {b: '1'}}`, `a[0]=x` and `a[]=x` → `{a: ['x']}`. */
export function parseStripeQuery(params: URLSearchParams): Record<string, any> {
  const out: Record<string, any> = {};
  for (const [key, value] of params) {
    const match = /^([^[\]]+)\[([^[\]]*)\]$/.exec(key);
    if (!match) {
      out[key] = value;
      continue;
    }
    const [, name, inner] = match;
    if (inner === '' || /^\d+$/.test(inner)) {
      const list = Array.isArray(out[name]) ? (out[name] as string[]) : (out[name] = []);
      if (inner === '') {
        list.push(value);
      } else {
        list[Number(inner)] = value;
      }
    } else {
      const object = typeof out[name] === 'object' && !Array.isArray(out[name]) ? out[name] : (out[name] = {});
      object[inner] = value;
    }
  }
  return out;
}

function stripeError(type: string, code: string, message: string, param?: string): unknown {
  return { error: { type, code, message, ...(param ? { param } : {}) } };
}

/** As Stripe words it: the key masked but for its last four characters. */
function invalidKeyMessage(presented: string | undefined): string {
  if (!presented) {
    return 'You did not provide an API key.';
  }
  const prefix = /^[a-z]+_(test|live)_/.exec(presented)?.[0] ?? '';
  return `Invalid API Key provided: ${prefix}${'*'.repeat(8)}${presented.slice(-4)}`;
}

function withoutSequence<T>(item: T): T {
  if (typeof item === 'object' && item !== null && '__seq' in item) {
    const { __seq: _seq, ...rest } = item as Record<string, unknown>;
    return rest as T;
  }
  return item;
}

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

/** Stripe's answer to a restricted key without the permission an endpoint needs. */
function permissionDenied(): unknown {
  return stripeError(
    'invalid_request_error',
    'secret_key_required',
    'The provided key does not have the required permissions for this endpoint.',
  );
}
