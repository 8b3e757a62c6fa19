/**
 * Thrown by a handler for an event that can never succeed (a malformed object, a reference that
 * can never resolve): the event is dead-lettered at once instead of being retried.
 */
export class PermanentEventError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'PermanentEventError';
  }
}
